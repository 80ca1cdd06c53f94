"""An organization's AI endpoint: the OpenAI-compatible chat-completions service its chatbots' `ai_prompt` nodes call."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, TenantMixin


class AiSettings(TenantMixin, Base):
    __tablename__ = "ai_settings"

    # One row per organization: the unique index is also the one the tenancy filter uses.
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), unique=True)
    base_url: Mapped[str] = mapped_column(String(500))  # .../v1: "/chat/completions" is appended
    model: Mapped[str] = mapped_column(String(200))
    # Encrypted with shared/crypto.py; never returned by the API once stored. The hint (its last four
    # characters) is what lets an admin tell which key is in place.
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    api_key_hint: Mapped[str] = mapped_column(String(4))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
