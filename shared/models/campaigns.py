"""Bulk template campaigns and their recipients ledger.

A campaign is an intent: a template, how each placeholder is filled per recipient, an audience, the
numbers that carry it, and when. At start the audience is resolved once into the ledger, one row per
campaign and contact (unique), with the reason a contact is suppressed; the campaigns pool drips the
pending rows into the shared sending as bulk traffic. A ledger row is tied to the one message it
produced (`message_id`, set in the same transaction as the message's insert), so nobody is sent twice.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, SoftDeleteMixin, TenantMixin, pg_enum


class CampaignStatus(str, enum.Enum):
    draft = "draft"
    scheduled = "scheduled"
    running = "running"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"


EDITABLE_STATUSES = (CampaignStatus.draft, CampaignStatus.scheduled)
FINAL_STATUSES = (CampaignStatus.completed, CampaignStatus.cancelled, CampaignStatus.failed)


class RecipientState(str, enum.Enum):
    pending = "pending"  # waits its turn in the drip
    queued = "queued"  # its message exists (`message_id`): the message's status tells the rest
    retry = "retry"  # Meta's marketing cap (131049): tried again at `next_attempt_at`, within the validity
    skipped = "skipped"  # suppressed at resolution or at its turn: `reason` says why


class Campaign(TenantMixin, SoftDeleteMixin, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_status_scheduled_at", "status", "scheduled_at"),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[CampaignStatus] = mapped_column(
        pg_enum(CampaignStatus, "campaign_status"), default=CampaignStatus.draft,
        server_default=CampaignStatus.draft.value)
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("message_templates.id", ondelete="SET NULL"))
    # placeholder -> source per recipient (shared/campaigns/variables.py)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    # {"type": "all" | "tags" | "segment" | "list", ...} (shared/services/campaign_audience.py)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    number_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), default=list,
                                                        server_default=text("'{}'::uuid[]"))
    # Caps under the numbers' own pace: messages per second, and a delay between two messages.
    rate_limit_per_second: Mapped[int | None] = mapped_column(Integer)
    delay_ms: Mapped[int | None] = mapped_column(Integer)
    attribution_hours: Mapped[int] = mapped_column(Integer, default=72, server_default=text("72"))
    validity_hours: Mapped[int] = mapped_column(Integer, default=72, server_default=text("72"))
    scheduled_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    paused_at: Mapped[dt.datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(String(60))
    pause_message: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[dt.datetime | None]
    # The drip's last turn: beat resumes a running campaign whose drip went quiet (a worker died).
    ticked_at: Mapped[dt.datetime | None]
    audience_resolved_at: Mapped[dt.datetime | None]
    recipients_total: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    suppressed_total: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    queued_total: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Unique recipients the messaging-limit tier still allowed at resolution (None: unlimited).
    limit_room: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class CampaignRecipient(Base):
    """The ledger: one row per campaign and contact. Scoped through its campaign (no organization column:
    the drip reads it by campaign id only, and 100,000 rows are written per start)."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        Index("uq_campaign_recipients_campaign_id_contact_id", "campaign_id", "contact_id", unique=True),
        # The drip's queue: rows still to send, in ledger order.
        Index("ix_campaign_recipients_due", "campaign_id", "next_attempt_at",
              postgresql_where=text("state IN ('pending', 'retry')")),
    )

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # No foreign key: contacts are only ever soft-deleted (an organization's removal cascades through its
    # campaigns), and a key checked row by row was a sixth of a 100,000-row start.
    contact_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    number_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[RecipientState] = mapped_column(pg_enum(RecipientState, "campaign_recipient_state"))
    reason: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    next_attempt_at: Mapped[dt.datetime | None]
