"""Every model module, imported so Alembic's autogenerate sees the whole metadata."""

from shared.models.base import Base, SoftDeleteMixin, TenantMixin
from shared.models.jobs import Job, JobStatus
from shared.models.tenancy import Organization, User

__all__ = ["Base", "Job", "JobStatus", "Organization", "SoftDeleteMixin", "TenantMixin", "User"]
