"""The event backlog: event-log lines kept in PostgreSQL while the event store (MongoDB) cannot take them,
until the maintenance sweep replays them (shared/event_backlog.py). Rows are the entries of
shared/events.append_events, with their event id and time fixed, so a replay is idempotent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base


class EventBacklogEntry(Base):
    __tablename__ = "event_backlog"
    __table_args__ = (Index("ix_event_backlog_created_at", "created_at"),)

    event_id: Mapped[str] = mapped_column(String)
    # No foreign key: a line outlives what it is about (an organization deleted meanwhile still has its history).
    org_id: Mapped[str | None] = mapped_column(String)
    event: Mapped[str] = mapped_column(String)
    subject_type: Mapped[str] = mapped_column(String)
    subject_id: Mapped[str] = mapped_column(String)
    actor: Mapped[str | None] = mapped_column(String)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[dt.datetime]
