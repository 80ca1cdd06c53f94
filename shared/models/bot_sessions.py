"""Bot sessions: a conversation's run of a published chatbot version, as the bots pool advances it.

One live session (active, waiting or handoff) per conversation: a partial unique index makes a second
impossible. `state` is the interpreter's own (shared/flows: opaque here); `last_message_sequence` is the
sequence of the last inbound message applied, so a redelivered step applies nothing twice.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, TenantMixin, pg_enum


class BotSessionStatus(str, enum.Enum):
    active = "active"  # running between two waits (a step in progress, an outside call pending)
    waiting = "waiting"  # waits for the customer's answer (or a timeout)
    handoff = "handoff"  # handed to an agent or the queue: the bot answers no more
    ended = "ended"


class BotEndReason(str, enum.Enum):
    completed = "completed"  # the flow reached its end
    handoff = "handoff"  # handed to an agent or the queue (status handoff until the conversation closes)
    agent = "agent"  # an agent replied or took the conversation while the bot had it
    closed = "closed"  # the conversation was closed while the bot had it
    expired = "expired"  # the customer stopped answering (no timeout branch; the idle limit passed)


LIVE_BOT_SESSION_STATUSES = (BotSessionStatus.active, BotSessionStatus.waiting, BotSessionStatus.handoff)


class BotSession(TenantMixin, Base):
    __tablename__ = "bot_sessions"
    __table_args__ = (
        Index("uq_bot_sessions_conversation_id_live", "conversation_id", unique=True,
              postgresql_where=text("status IN ('active', 'waiting', 'handoff')")),
        Index("ix_bot_sessions_due_at_live", "due_at",
              postgresql_where=text("status IN ('active', 'waiting') AND due_at IS NOT NULL")),
        Index("ix_bot_sessions_chatbot_id_created_at", "chatbot_id", "created_at"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                       index=True)
    chatbot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chatbots.id", ondelete="CASCADE"), index=True)
    # The version the session started on and keeps running on, whatever is published later.
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[BotSessionStatus] = mapped_column(pg_enum(BotSessionStatus, "bot_session_status"),
                                                     default=BotSessionStatus.active, server_default="active")
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    # The last inbound message fed to the interpreter: its id, and its sequence (what "after" means).
    last_message_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    last_message_sequence: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[dt.datetime | None]
    # When beat must act on the session: a question's timeout, an outside call given up, an idle expiry.
    due_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))  # BotEndReason's values
    timeouts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The nodes the session has visited, once each, as "flow_id/node_id": the per-node statistics.
    path: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    # The question nodes whose timeout fired, as "flow_id/node_id".
    timed_out_nodes: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    # The outside call (API or AI) the session waits on, as the interpreter asked for it; None otherwise.
    pending_call: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
