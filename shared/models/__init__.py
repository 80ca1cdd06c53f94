"""Every model module, imported so Alembic's autogenerate sees the whole metadata."""

from shared.models.base import Base, SoftDeleteMixin, TenantMixin
from shared.models.contacts import (
    DEFAULT_LIFECYCLE_STAGES,
    AttributeDefinition,
    AttributeType,
    ConsentAction,
    ConsentEvent,
    ConsentScope,
    ConsentSource,
    ConsentState,
    Contact,
    ContactImport,
    Segment,
    Tag,
    contact_tags,
)
from shared.models.jobs import Job, JobStatus
from shared.models.whatsapp import (
    MessageTemplate,
    NumberStatus,
    WebhookEvent,
    WebhookEventStatus,
    WhatsAppNumber,
)
from shared.models.tenancy import (
    Availability,
    Department,
    Organization,
    Plan,
    SubscriptionStatus,
    User,
    department_members,
)

__all__ = [
    "MessageTemplate",
    "NumberStatus",
    "WebhookEvent",
    "WebhookEventStatus",
    "WhatsAppNumber",
    "DEFAULT_LIFECYCLE_STAGES",
    "AttributeDefinition",
    "AttributeType",
    "ConsentAction",
    "ConsentEvent",
    "ConsentScope",
    "ConsentSource",
    "ConsentState",
    "Contact",
    "ContactImport",
    "Segment",
    "Tag",
    "contact_tags",
    "Availability",
    "Base",
    "Department",
    "Job",
    "JobStatus",
    "Organization",
    "Plan",
    "SoftDeleteMixin",
    "SubscriptionStatus",
    "TenantMixin",
    "User",
    "department_members",
]
