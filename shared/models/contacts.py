"""Contacts, tags, the consent ledger, segments and custom attribute definitions."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, SoftDeleteMixin, TenantMixin, pg_enum



class ConsentState(str, enum.Enum):
    unknown = "unknown"
    opted_in = "opted_in"
    opted_out = "opted_out"


class ConsentScope(str, enum.Enum):
    marketing = "marketing"
    utility = "utility"
    all = "all"


class ConsentAction(str, enum.Enum):
    opt_in = "opt_in"
    opt_out = "opt_out"


class ConsentSource(str, enum.Enum):
    api = "api"
    import_ = "import"
    keyword = "keyword"
    agent = "agent"
    flow = "flow"
    ctwa_ad = "ctwa_ad"  # click-to-WhatsApp ad


class AttributeType(str, enum.Enum):
    text = "text"
    number = "number"
    date = "date"
    boolean = "boolean"


DEFAULT_LIFECYCLE_STAGES = ("lead", "prospect", "customer", "churned")

contact_tags = Table(
    "contact_tags",
    Base.metadata,
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Index("ix_contact_tags_tag_id_contact_id", "tag_id", "contact_id"),
)


class Tag(TenantMixin, Base):
    __tablename__ = "tags"
    __table_args__ = (Index("uq_tags_organization_id_name", "organization_id", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[str | None] = mapped_column(String(20))


class Contact(TenantMixin, SoftDeleteMixin, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        # One live contact per person: identity_key folds the two forms of a Brazilian mobile together.
        Index(
            "uq_contacts_organization_id_identity_key_live",
            "organization_id",
            "identity_key",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("uq_contacts_organization_id_user_id_live", "organization_id", "user_id", unique=True,
              postgresql_where=text("user_id IS NOT NULL AND deleted_at IS NULL")),
        Index("ix_contacts_organization_id_created_at", "organization_id", "created_at"),
        Index("ix_contacts_organization_id_lifecycle_stage", "organization_id", "lifecycle_stage"),
        Index("ix_contacts_organization_id_lead_score", "organization_id", "lead_score"),
        Index("ix_contacts_organization_id_last_inbound_at", "organization_id", "last_inbound_at"),
        Index("ix_contacts_custom_attributes", "custom_attributes", postgresql_using="gin",
              postgresql_ops={"custom_attributes": "jsonb_path_ops"}),
        Index("ix_contacts_search_trgm", text("(coalesce(name, '') || ' ' || phone_e164 || ' ' || coalesce(email, '')) gin_trgm_ops"),
              postgresql_using="gin"),
    )

    # No index of its own (TenantMixin's): every (organization_id, ...) index above serves its lookups,
    # and each index costs the import an insert per contact.
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    wa_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(64))  # Meta's business-scoped user id (BSUID)
    phone_e164: Mapped[str] = mapped_column(String(20))
    identity_key: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    profile_name: Mapped[str | None] = mapped_column(String(200))  # as WhatsApp reports it
    language: Mapped[str | None] = mapped_column(String(20))
    custom_attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    lifecycle_stage: Mapped[str] = mapped_column(String(50), default="lead", server_default=text("'lead'"))
    lead_score: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    blocked_at: Mapped[dt.datetime | None]
    # Derived from the consent ledger by shared/services/consent.py, kept here so filters stay fast.
    marketing_consent: Mapped[ConsentState] = mapped_column(
        pg_enum(ConsentState, "consent_state"), default=ConsentState.unknown, server_default="unknown"
    )
    utility_consent: Mapped[ConsentState] = mapped_column(
        pg_enum(ConsentState, "consent_state"), default=ConsentState.unknown, server_default="unknown"
    )
    first_inbound_at: Mapped[dt.datetime | None]
    last_inbound_at: Mapped[dt.datetime | None]
    first_outbound_at: Mapped[dt.datetime | None]
    last_outbound_at: Mapped[dt.datetime | None]
    # Maintained by the messages pipeline.
    messages_in_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    messages_out_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    tags: Mapped[list[Tag]] = relationship(secondary=contact_tags, lazy="selectin", order_by=Tag.name)

    @property
    def is_blocked(self) -> bool:
        return self.blocked_at is not None


class ContactFormerNumber(TenantMixin, Base):
    """A number a contact had until Meta told us it changed (`user_changed_number`): what the customer sent from it
    up to `changed_at` (Meta's time) is that contact's, even when it reaches us after the notice; after it, the
    number may be someone else's. One row per number and organization: a later change of it replaces the row."""

    __tablename__ = "contact_former_numbers"
    __table_args__ = (Index("uq_contact_former_numbers_organization_id_identity_key", "organization_id",
                            "identity_key", unique=True),)

    # No index of its own (TenantMixin's): the unique one above serves the lookups.
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    wa_id: Mapped[str] = mapped_column(String(32))  # as Meta named it
    identity_key: Mapped[str] = mapped_column(String(32))  # shared/phones.py, as contacts are keyed
    changed_at: Mapped[dt.datetime]


class ConsentEvent(TenantMixin, Base):
    """One opt-in or opt-out, as it happened; the contact's consent columns are derived from these."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_contact_id_occurred_at", "contact_id", "occurred_at"),)

    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    action: Mapped[ConsentAction] = mapped_column(pg_enum(ConsentAction, "consent_action"))
    scope: Mapped[ConsentScope] = mapped_column(pg_enum(ConsentScope, "consent_scope"))
    source: Mapped[ConsentSource] = mapped_column(pg_enum(ConsentSource, "consent_source"))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str | None] = mapped_column(String(200))  # who, when not a user: "customer", "import <id>"
    evidence: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Segment(TenantMixin, SoftDeleteMixin, Base):
    """A saved contact filter; its members are computed live."""

    __tablename__ = "segments"
    __table_args__ = (
        Index("uq_segments_organization_id_name_live", "organization_id", "name", unique=True,
              postgresql_where=text("deleted_at IS NULL")),
    )

    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class AttributeDefinition(TenantMixin, Base):
    """A custom attribute an organization keeps on its contacts, and its type."""

    __tablename__ = "attribute_definitions"
    __table_args__ = (Index("uq_attribute_definitions_organization_id_key", "organization_id", "key", unique=True),)

    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    type: Mapped[AttributeType] = mapped_column(pg_enum(AttributeType, "attribute_type"))


class ContactImport(TenantMixin, Base):
    """An uploaded CSV waiting to be previewed and imported; the import itself runs as a job."""

    __tablename__ = "contact_imports"

    filename: Mapped[str] = mapped_column(String(255))
    file_key: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(20))
    delimiter: Mapped[str] = mapped_column(String(1))
    headers: Mapped[list[str]] = mapped_column(JSONB)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    report_key: Mapped[str | None] = mapped_column(String(500))
