"""Alerts: what needs an admin's eye (a template rejected or paused, quality downgraded, an account restricted, a
number's sends paused, an error Meta reported with no message). One open alert per cause; a repeat counts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, TenantMixin


class Alert(TenantMixin, Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("uq_alerts_organization_id_cause_open", "organization_id", "cause", unique=True,
              postgresql_where=text("acknowledged_at IS NULL")),
        Index("ix_alerts_organization_id_created_at", "organization_id", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(50))
    cause: Mapped[str] = mapped_column(String(200))  # what makes two alerts the same one (kind and subject)
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    occurrences: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    last_seen_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
