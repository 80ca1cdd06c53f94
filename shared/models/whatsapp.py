"""WhatsApp numbers, message templates, and the webhook intake rows Meta's calls land in."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Identity, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, SoftDeleteMixin, TenantMixin, pg_enum



class NumberStatus(str, enum.Enum):
    connected = "connected"
    flagged = "flagged"
    restricted = "restricted"
    disconnected = "disconnected"


class WhatsAppNumber(TenantMixin, SoftDeleteMixin, Base):
    __tablename__ = "whatsapp_numbers"
    __table_args__ = (
        # phone_number_id routes every webhook: one live owner across the whole platform.
        Index("uq_whatsapp_numbers_phone_number_id_live", "phone_number_id", unique=True,
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_whatsapp_numbers_waba_id", "waba_id"),
        Index("ix_whatsapp_numbers_display_phone_number", "display_phone_number"),
    )

    waba_id: Mapped[str] = mapped_column(String(64))
    phone_number_id: Mapped[str] = mapped_column(String(64))
    display_phone_number: Mapped[str] = mapped_column(String(32))  # digits, as Meta reports it
    verified_name: Mapped[str | None] = mapped_column(String(200))
    quality_rating: Mapped[str] = mapped_column(String(20), default="UNKNOWN", server_default="UNKNOWN")
    messaging_limit_tier: Mapped[str | None] = mapped_column(String(40))
    throughput_mps: Mapped[int] = mapped_column(Integer, default=80, server_default=text("80"))
    status: Mapped[NumberStatus] = mapped_column(
        pg_enum(NumberStatus, "number_status"), default=NumberStatus.connected, server_default="connected"
    )
    default_chatbot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("chatbots.id", ondelete="SET NULL"))
    # Encrypted with shared/crypto.py; never returned by the API once stored.
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    app_secret_encrypted: Mapped[str] = mapped_column(Text)
    verify_token_encrypted: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[dt.datetime | None]
    # Set when Meta refuses the number's token (or the account): sends wait until credentials are fixed.
    sends_paused_at: Mapped[dt.datetime | None]
    sends_paused_reason: Mapped[str | None] = mapped_column(Text)
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    # Meta's account restriction (account_update), as it sent it, and what it holds (shared.services.restrictions):
    # every send until sends_held_until; business-initiated (template) sends until templates_held_until.
    restriction_info: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    sends_held_until: Mapped[dt.datetime | None]
    templates_held_until: Mapped[dt.datetime | None]


class MessageTemplate(TenantMixin, SoftDeleteMixin, Base):
    __tablename__ = "message_templates"
    __table_args__ = (
        Index("uq_message_templates_org_waba_name_language_live", "organization_id", "waba_id", "name", "language",
              unique=True, postgresql_where=text("deleted_at IS NULL")),
        Index("ix_message_templates_waba_id_name", "waba_id", "name"),
    )

    waba_id: Mapped[str] = mapped_column(String(64))
    meta_template_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(20))
    # DRAFT (not yet accepted by Meta) then Meta's: PENDING, APPROVED, REJECTED, PAUSED, DISABLED, ...
    status: Mapped[str] = mapped_column(String(30), default="DRAFT", server_default="DRAFT")
    rejected_reason: Mapped[str | None] = mapped_column(String(200))
    status_description: Mapped[str | None] = mapped_column(Text)  # Meta's words with a rejection or a pause
    quality_score: Mapped[str | None] = mapped_column(String(20))
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    submit_error: Mapped[str | None] = mapped_column(Text)


class WebhookEventStatus(str, enum.Enum):
    received = "received"
    processing = "processing"
    processed = "processed"
    unroutable = "unroutable"  # names no number we know: kept, answered 200, not processed
    failed = "failed"


class WebhookEvent(Base):
    """One POST from Meta, byte for byte, before anything interprets it."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # Meta repeats deliveries: the same bytes are stored and processed once.
        Index("uq_webhook_events_body_sha256", "body_sha256", unique=True),
        Index("ix_webhook_events_status_created_at", "status", "created_at"),
        # The drain's queue: waiting rows in arrival order.
        Index("ix_webhook_events_status_sequence", "status", "sequence"),
    )

    # Arrival order: the order rows were inserted in (created_at is each transaction's start, equal for two
    # requests that began together and not the order they committed in).
    sequence: Mapped[int] = mapped_column(BigInteger, Identity(always=False))

    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), index=True
    )
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64))
    phone_number_ids: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    status: Mapped[WebhookEventStatus] = mapped_column(
        pg_enum(WebhookEventStatus, "webhook_event_status"), default=WebhookEventStatus.received,
        server_default="received",
    )
    # messages/statuses changes wait here for the conversations pipeline (never dropped).
    has_messages: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    messages_processed_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    processed_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
