"""Bots pipeline: each organization's AI endpoint (OpenAI-compatible chat completions), which its chatbots'
`ai_prompt` nodes call through shared.services.bot_calls.

The API key is encrypted at rest (shared/crypto.py) like a number's access token and never leaves through the
API once stored; its last four characters are kept as a hint. The base URL must be a public address (or one
OUTBOUND_ALLOWED_HOSTS allows): checked when saved, and again at every call, since names resolve anew.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared import crypto
from shared.audit import audit_on_commit
from shared.errors import InvalidInputError
from shared.models import AiSettings
from shared.public_urls import check_public_url
from shared.settings import get_settings


class AiApiKeyRequiredError(InvalidInputError):
    code = "ai_api_key_required"


@dataclass(frozen=True)
class AiEndpoint:
    """What a call needs, read out of the row (key decrypted), so no ORM object outlives the read."""

    base_url: str
    model: str
    api_key: str
    is_enabled: bool

    def __repr__(self) -> str:
        return f"<AiEndpoint {self.base_url} {self.model} enabled={self.is_enabled}>"


def get_ai_settings(session: Session, *, org_id: uuid.UUID) -> AiSettings | None:
    return session.execute(select(AiSettings).where(AiSettings.organization_id == org_id)).scalar_one_or_none()


def save_ai_settings(session: Session, *, org_id: uuid.UUID, base_url: str, model: str, api_key: str | None = None,
                     is_enabled: bool | None = None, actor_id: uuid.UUID | None) -> AiSettings:
    """Create or replace the organization's AI endpoint. Leaving out `api_key` or `is_enabled` keeps what is stored
    (a first save needs the key; it is enabled unless told otherwise)."""
    check_public_url(base_url, allowed=get_settings().outbound_allowed_hosts)
    settings = get_ai_settings(session, org_id=org_id)
    if settings is None:
        if not api_key:
            raise AiApiKeyRequiredError("The first save needs the API key", details={"field": "api_key"})
        # Two first saves at once: the second finds the first's row instead of failing on the unique index.
        session.execute(insert(AiSettings).values(
            organization_id=org_id, base_url=base_url, model=model, api_key_encrypted=crypto.encrypt(api_key),
            api_key_hint=api_key[-4:], is_enabled=True if is_enabled is None else is_enabled,
        ).on_conflict_do_nothing(index_elements=[AiSettings.organization_id]))
        settings = get_ai_settings(session, org_id=org_id)
    settings.base_url, settings.model = base_url, model
    if api_key:
        settings.api_key_encrypted, settings.api_key_hint = crypto.encrypt(api_key), api_key[-4:]
    if is_enabled is not None:
        settings.is_enabled = is_enabled
    session.flush()
    session.refresh(settings)
    audit_on_commit(session, org_id=org_id, action="ai_settings.saved", subject_type="organization",
                    subject_id=org_id, actor_id=actor_id,
                    data={"base_url": base_url, "model": model, "is_enabled": settings.is_enabled,
                          "api_key_replaced": bool(api_key)})
    return settings


def delete_ai_settings(session: Session, *, org_id: uuid.UUID, actor_id: uuid.UUID | None) -> None:
    """Forget the endpoint and its key; `ai_prompt` nodes then take their fallback branch. Deleting nothing is fine."""
    settings = get_ai_settings(session, org_id=org_id)
    if settings is None:
        return
    session.delete(settings)
    session.flush()
    audit_on_commit(session, org_id=org_id, action="ai_settings.deleted", subject_type="organization",
                    subject_id=org_id, actor_id=actor_id)


def ai_endpoint(session: Session, *, org_id: uuid.UUID) -> AiEndpoint | None:
    settings = get_ai_settings(session, org_id=org_id)
    if settings is None:
        return None
    return AiEndpoint(base_url=settings.base_url, model=settings.model,
                      api_key=crypto.decrypt(settings.api_key_encrypted), is_enabled=settings.is_enabled)


def rotate_ai_keys(session: Session) -> int:
    """Re-encrypt every stored AI key with the newest key (`python -m shared.cli rotate-secrets`)."""
    rows = list(session.execute(select(AiSettings).execution_options(all_tenants=True)).scalars())
    for settings in rows:
        settings.api_key_encrypted = crypto.rotate(settings.api_key_encrypted)
    session.flush()
    return len(rows)
