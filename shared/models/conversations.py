"""Conversations (one per contact and number, reopened when the customer writes again) and their messages."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, TenantMixin, pg_enum



class ConversationStatus(str, enum.Enum):
    open = "open"
    pending = "pending"
    closed = "closed"
    archived = "archived"


class Priority(str, enum.Enum):
    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"


class ConversationOwner(str, enum.Enum):
    none = "none"
    bot = "bot"
    agent = "agent"


class Direction(str, enum.Enum):
    inbound = "inbound"
    outbound = "outbound"


class MessageStatus(str, enum.Enum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"
    unknown = "unknown"  # the request may have reached Meta: settled by a status webhook, never resent blindly
    received = "received"  # inbound


class SenderType(str, enum.Enum):
    customer = "customer"
    agent = "agent"
    bot = "bot"
    campaign = "campaign"
    system = "system"  # keyword confirmations and other replies PyTake sends on its own


OPEN_STATUSES = (ConversationStatus.open, ConversationStatus.pending)


class Conversation(TenantMixin, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        # One thread per customer and number: a closed one reopens instead of a new one starting.
        Index("uq_conversations_number_id_contact_id", "number_id", "contact_id", unique=True),
        Index("ix_conversations_organization_id_last_message_at", "organization_id", "last_message_at", "id"),
        Index("ix_conversations_assigned_agent_id_status", "assigned_agent_id", "status"),
        Index("ix_conversations_waiting", "organization_id", "waiting_since",
              postgresql_where=text("assigned_agent_id IS NULL AND waiting_since IS NOT NULL")),
    )

    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    number_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"))
    status: Mapped[ConversationStatus] = mapped_column(
        pg_enum(ConversationStatus, "conversation_status"), default=ConversationStatus.open, server_default="open"
    )
    priority: Mapped[Priority] = mapped_column(
        pg_enum(Priority, "conversation_priority"), default=Priority.medium, server_default="medium"
    )
    owner: Mapped[ConversationOwner] = mapped_column(
        pg_enum(ConversationOwner, "conversation_owner"), default=ConversationOwner.none, server_default="none"
    )
    assigned_agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"))
    # Set while the conversation waits for an agent (the assignment queue, oldest first).
    waiting_since: Mapped[dt.datetime | None]
    window_expires_at: Mapped[dt.datetime | None]  # 24 h after the customer's last message
    # Meta answered 131026 (undeliverable) for this contact on this number: marketing waits until then.
    unreachable_until: Mapped[dt.datetime | None]
    # The click-to-WhatsApp ad the customer came from (Meta's `referral`), and the 72 hours it opens free of charge.
    referral: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    free_entry_until: Mapped[dt.datetime | None]
    first_response_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    last_message_at: Mapped[dt.datetime | None]
    last_message_preview: Mapped[str | None] = mapped_column(String(200))
    last_inbound_at: Mapped[dt.datetime | None]
    last_outbound_at: Mapped[dt.datetime | None]
    last_read_at: Mapped[dt.datetime | None]  # when an agent last marked it read
    unread_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    messages_in_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    messages_out_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    def window_open(self, now: dt.datetime) -> bool:
        return self.window_expires_at is not None and self.window_expires_at > now


class Message(TenantMixin, Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("uq_messages_wamid", "wamid", unique=True, postgresql_where=text("wamid IS NOT NULL")),
        Index("uq_messages_organization_id_idempotency_key", "organization_id", "idempotency_key", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL")),
        Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at", "id"),
        # A conversation's messages as the inbox lists them, and the dispatcher's per-conversation order.
        Index("ix_messages_conversation_id_sequence", "conversation_id", "sequence"),
        # The dispatcher's claim: a number's pending outbound messages (its conversations' heads, the due ones).
        Index("ix_messages_number_id_pending", "number_id", "next_attempt_at",
              postgresql_where=text("status IN ('queued', 'sending') AND direction = 'outbound'")),
        # The plan's monthly message count.
        Index("ix_messages_organization_id_direction_created_at", "organization_id", "direction", "created_at"),
        # The inbound routing queue and the send sweep read these.
        Index("ix_messages_unrouted", "conversation_id", "sequence",
              postgresql_where=text("direction = 'inbound' AND routed_at IS NULL")),
        Index("ix_messages_outbound_pending", "status", "next_attempt_at",
              postgresql_where=text("status IN ('queued', 'sending')")),
        # A campaign's messages not yet out: the drip's backlog per number, and what a pause withdraws.
        Index("ix_messages_campaign_pending", "campaign_id",
              postgresql_where=text("campaign_id IS NOT NULL AND status IN ('queued', 'sending')")),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    number_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"))
    direction: Mapped[Direction] = mapped_column(pg_enum(Direction, "message_direction"))
    type: Mapped[str] = mapped_column(String(30))  # Meta's type: text, image, template, interactive, ...
    content: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    wamid: Mapped[str | None] = mapped_column(Text)
    # Arrival order, assigned as messages are stored: what "in order" means for one conversation.
    sequence: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    status: Mapped[MessageStatus] = mapped_column(pg_enum(MessageStatus, "message_status"))
    queued_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    read_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(40))  # Meta's code, or ours (window_closed, blocked, ...)
    error_message: Mapped[str | None] = mapped_column(Text)
    context_wamid: Mapped[str | None] = mapped_column(Text)  # the message this one replies to
    # Inbound: Meta's `context.forwarded` / `context.frequently_forwarded` (a forward is never a reply).
    forwarded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    frequently_forwarded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    referral: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    sender_type: Mapped[SenderType] = mapped_column(pg_enum(SenderType, "message_sender_type"))
    sender_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    campaign_id: Mapped[uuid.UUID | None]
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("message_templates.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # Outbound: where the request that queued it came from ({ip, user_agent, request_id}); the sends pool
    # writes the timeline's `messages.queued` line from it when it first takes the message.
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    occurred_at: Mapped[dt.datetime | None]  # Meta's timestamp for inbound messages
    # Outbound: Meta's billing objects from the latest status that carried them (shared/services/statuses.py):
    # pricing {billable, pricing_model, category, type}; meta_conversation {id, origin_type, expires_at}.
    pricing: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    meta_conversation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The customer's reaction to this message ({emoji, at}); an empty emoji is Meta's removal, kept for its time.
    reaction: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    from_user_id: Mapped[str | None] = mapped_column(String(64))  # inbound: Meta's business-scoped user id
    # Outbound delivery bookkeeping.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[dt.datetime | None]
    # Inbound: handed to the conversation's bot or agent (once, in arrival order).
    routed_at: Mapped[dt.datetime | None]
    # Media: Meta's id (inbound or uploaded), our stored copy once fetched.
    media_id: Mapped[str | None] = mapped_column(String(100))
    media_key: Mapped[str | None] = mapped_column(String(500))
    media_error: Mapped[str | None] = mapped_column(Text)

    @property
    def shown_reaction(self) -> dict[str, Any] | None:
        """The reaction as the inbox shows it: none before one came or after it was taken back."""
        return self.reaction if self.reaction and self.reaction.get("emoji") else None

    @property
    def is_free_form(self) -> bool:
        return self.type != "template"
