"""Organizations, plans, users and departments: the tenant every other row points at."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, SoftDeleteMixin, TenantMixin, pg_enum
from shared.permissions import Role



class SubscriptionStatus(str, enum.Enum):
    trialing = "trialing"
    active = "active"
    expired = "expired"


class Availability(str, enum.Enum):
    online = "online"
    away = "away"
    offline = "offline"


class Plan(Base):
    """A commercial plan and its limits; NULL means unlimited. Rows, not code: super_admin edits them."""

    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    max_users: Mapped[int | None] = mapped_column(Integer)
    max_whatsapp_numbers: Mapped[int | None] = mapped_column(Integer)
    max_contacts: Mapped[int | None] = mapped_column(Integer)
    max_monthly_messages: Mapped[int | None] = mapped_column(Integer)


class Organization(SoftDeleteMixin, Base):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    plan_code: Mapped[str] = mapped_column(
        ForeignKey("plans.code", onupdate="CASCADE"), server_default=text("'free'")
    )
    subscription_status: Mapped[SubscriptionStatus] = mapped_column(
        pg_enum(SubscriptionStatus, "subscription_status"),
        default=SubscriptionStatus.trialing,
        server_default=SubscriptionStatus.trialing.value,
    )
    trial_ends_at: Mapped[dt.datetime | None]
    suspended_at: Mapped[dt.datetime | None]
    suspension_reason: Mapped[str | None] = mapped_column(String(500))
    timezone: Mapped[str] = mapped_column(String(64), server_default=text("'UTC'"), default="UTC")
    default_country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2, for local phone numbers
    billing_email: Mapped[str | None] = mapped_column(String(320))
    # What PyTake writes to customers in on its own (keyword confirmations): one of shared.languages.SUPPORTED_LANGUAGES.
    language: Mapped[str] = mapped_column(String(8), server_default=text("'en'"), default="en")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))

    plan: Mapped[Plan] = relationship(lazy="joined")

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


department_members = Table(
    "department_members",
    Base.metadata,
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


class User(TenantMixin, SoftDeleteMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        # One account per email among live users; a deleted user's address can sign up again.
        Index("uq_users_email_live", "email", unique=True, postgresql_where=text("deleted_at IS NULL")),
    )

    # NULL only for super_admin: platform staff belong to no organization (and so never
    # show up in an organization's tenant-scoped queries).
    organization_id: Mapped[uuid.UUID | None] = mapped_column(  # type: ignore[assignment]
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(100))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(pg_enum(Role, "user_role"))
    deactivated_at: Mapped[dt.datetime | None]
    # Tokens issued before this instant stop working (password change, deactivation).
    tokens_valid_after: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    availability: Mapped[Availability] = mapped_column(
        pg_enum(Availability, "agent_availability"), default=Availability.offline, server_default="offline"
    )
    last_seen_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    max_open_conversations: Mapped[int] = mapped_column(Integer, default=20, server_default=text("20"))
    last_assigned_at: Mapped[dt.datetime | None]  # round-robin: the longest-waiting online agent goes next
    avatar_url: Mapped[str | None] = mapped_column(String(1000))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))

    departments: Mapped[list["Department"]] = relationship(
        secondary=department_members, back_populates="members", lazy="selectin"
    )

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None and self.deleted_at is None


class Department(TenantMixin, SoftDeleteMixin, Base):
    __tablename__ = "departments"
    __table_args__ = (
        Index(
            "uq_departments_organization_id_name_live",
            "organization_id",
            "name",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))

    members: Mapped[list[User]] = relationship(secondary=department_members, back_populates="departments")
