"""WhatsApp numbers pipeline: the numbers an organization sends from, their credentials, and their health.

Credentials are encrypted at rest (shared/crypto.py) and never leave through the API once
stored. `phone_number_id` is unique across the platform because it routes every webhook.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.audit import audit_on_commit

from shared import crypto
from shared.errors import ConflictError, NotFoundError
from shared.models import NumberStatus, Organization, WhatsAppNumber
from shared.models.base import utcnow
from shared.queueing.names import FETCH_MEDIA
from shared.queueing.publish import enqueue_on_commit
from shared.services import chatbots, plans
from shared.settings import get_settings
from shared.whatsapp.client import GraphClient

CREDENTIAL_FIELDS = {"access_token": "access_token_encrypted", "app_secret": "app_secret_encrypted",
                     "verify_token": "verify_token_encrypted"}
STATUS_FROM_META = {"CONNECTED": NumberStatus.connected, "FLAGGED": NumberStatus.flagged,
                    "RESTRICTED": NumberStatus.restricted, "DISCONNECTED": NumberStatus.disconnected}


class NumberNotFoundError(NotFoundError):
    code = "number_not_found"


class NumberTakenError(ConflictError):
    code = "phone_number_id_taken"


def _encrypt_credentials(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for field, value in values.items():
        if field in CREDENTIAL_FIELDS:
            out[CREDENTIAL_FIELDS[field]] = crypto.encrypt(value) if value else None
        else:
            out[field] = value
    return out


def create_number(session: Session, *, org: Organization, phone_number_id: str, **fields: Any) -> WhatsAppNumber:
    plans.check_limit(session, org=org, resource="whatsapp_numbers")
    taken = session.execute(
        select(WhatsAppNumber.id).where(WhatsAppNumber.phone_number_id == phone_number_id)
        .execution_options(all_tenants=True)
    ).first()
    if taken:
        raise NumberTakenError(
            "This phone_number_id is already connected to an organization", details={"field": "phone_number_id"}
        )
    number = WhatsAppNumber(organization_id=org.id, phone_number_id=phone_number_id, **_encrypt_credentials(fields))
    session.add(number)
    session.flush()
    session.refresh(number)
    forget_routes()
    return number


def get_number(session: Session, *, org_id: uuid.UUID, number_id: uuid.UUID | str) -> WhatsAppNumber:
    return get_owned(session, WhatsAppNumber, number_id, org_id=org_id, not_found=NumberNotFoundError)


def list_numbers(session: Session, *, org_id: uuid.UUID) -> list[WhatsAppNumber]:
    return list(session.execute(
        select(WhatsAppNumber).where(WhatsAppNumber.organization_id == org_id).order_by(WhatsAppNumber.created_at)
    ).scalars())


def update_number(session: Session, *, number: WhatsAppNumber, changes: dict[str, Any]) -> WhatsAppNumber:
    """New credentials resume sends paused by a refused token (the message sweep then sends what waited) and
    fetch the inbound media a refused token left waiting."""
    if changes.get("default_chatbot_id") is not None:
        chatbots.check_default_chatbot(session, org_id=number.organization_id, chatbot_id=changes["default_chatbot_id"])
    for field, value in _encrypt_credentials(changes).items():
        setattr(number, field, value)
    forget_routes()
    if "access_token" in changes and number.sends_paused_at is not None:
        number.sends_paused_at = number.sends_paused_reason = None
        audit_on_commit(session, org_id=number.organization_id, action="numbers.sends_resumed", subject_type="number",
                        subject_id=number.id, actor_id=None)
    if "access_token" in changes:
        _fetch_media_awaiting_credentials(session, number)
    session.flush()
    return number


def _fetch_media_awaiting_credentials(session: Session, number: WhatsAppNumber) -> None:
    from shared.services.inbound import media_awaiting_credentials  # here: inbound imports what imports numbers

    for message_id in media_awaiting_credentials(session, number_id=number.id):
        enqueue_on_commit(session, FETCH_MEDIA, message_id=str(message_id), org_id=str(number.organization_id))


def delete_number(session: Session, *, number: WhatsAppNumber) -> None:
    number.soft_delete()
    number.status = NumberStatus.disconnected
    session.flush()
    forget_routes()


def numbers_for_phone_number_ids(session: Session, phone_number_ids: set[str]) -> list[WhatsAppNumber]:
    """Routing: across every organization (webhooks arrive before any tenant is known)."""
    if not phone_number_ids:
        return []
    return list(session.execute(
        select(WhatsAppNumber).where(WhatsAppNumber.phone_number_id.in_(phone_number_ids))
        .execution_options(all_tenants=True)
    ).scalars())


@dataclass(frozen=True)
class Route:
    """What the webhook door needs of a number: whose it is and the secret its payloads are signed with."""

    phone_number_id: str
    organization_id: uuid.UUID
    app_secret: str | None


ROUTE_CACHE_SECONDS = 30.0
_routes: dict[frozenset[str], tuple[float, list[Route]]] = {}


def forget_routes() -> None:
    _routes.clear()


def routes_for_phone_number_ids(lookups: Callable[[], Session], phone_number_ids: set[str], *,
                                fresh: bool = False) -> list[Route]:
    """The numbers a payload names, cached in the process for a few seconds: webhooks are the hottest path.

    Only complete answers are cached (an unknown id is looked up again next time); a signature that fails
    against a cached secret is checked again with `fresh=True`, so a rotated secret works at once.
    """
    key = frozenset(phone_number_ids)
    cached = _routes.get(key)
    if cached is not None and not fresh and cached[0] > time.monotonic():
        return cached[1]
    found = [Route(n.phone_number_id, n.organization_id, app_secrets([n])[0] if n.app_secret_encrypted else None)
             for n in numbers_for_phone_number_ids(lookups(), phone_number_ids)]
    if {route.phone_number_id for route in found} == key:
        if len(_routes) > 10_000:
            _routes.clear()
        _routes[key] = (time.monotonic() + ROUTE_CACHE_SECONDS, found)
    return found


def app_secrets(numbers: list[WhatsAppNumber]) -> list[str]:
    return [crypto.decrypt(n.app_secret_encrypted) for n in numbers if n.app_secret_encrypted]


def verify_tokens(session: Session) -> list[str]:
    rows = session.execute(
        select(WhatsAppNumber.verify_token_encrypted).where(WhatsAppNumber.verify_token_encrypted.is_not(None))
        .execution_options(all_tenants=True)
    ).scalars()
    return [crypto.decrypt(token) for token in rows]


def graph_client(number: WhatsAppNumber) -> GraphClient:
    settings = get_settings()
    return GraphClient(settings.graph_api_base, settings.whatsapp_api_version, crypto.decrypt(number.access_token_encrypted))


def apply_phone_info(number: WhatsAppNumber, info: dict[str, Any]) -> None:
    """Copy what Graph says about the number (GET /{phone_number_id}) onto our row."""
    number.verified_name = info.get("verified_name", number.verified_name)
    number.display_phone_number = "".join(
        ch for ch in info.get("display_phone_number", number.display_phone_number) if ch.isdigit()
    )
    number.quality_rating = info.get("quality_rating", number.quality_rating)
    # Meta answers the tier as `whatsapp_business_manager_messaging_limit` (the portfolio's limit, which
    # is what the client asks for); `messaging_limit_tier` is its deprecated name, read if that is all there is.
    number.messaging_limit_tier = (info.get("whatsapp_business_manager_messaging_limit")
                                   or info.get("messaging_limit_tier") or number.messaging_limit_tier)
    if info.get("status") in STATUS_FROM_META:
        number.status = STATUS_FROM_META[info["status"]]
    throughput = (info.get("throughput") or {}).get("level")
    if isinstance(throughput, int):
        number.throughput_mps = throughput
    number.last_synced_at = utcnow()
    number.last_sync_error = None


def rotate_secrets(session: Session) -> int:
    """Re-encrypt every stored credential with the newest key (after adding one to ENCRYPTION_KEYS)."""
    rotated = 0
    numbers = session.execute(
        select(WhatsAppNumber).execution_options(all_tenants=True, include_deleted=True)
    ).scalars()
    for number in numbers:
        for column in CREDENTIAL_FIELDS.values():
            value = getattr(number, column)
            if value:
                setattr(number, column, crypto.rotate(value))
        rotated += 1
    session.flush()
    return rotated


def _count_numbers(session: Session, org_id: uuid.UUID) -> int:
    return session.execute(
        select(func.count()).select_from(WhatsAppNumber).where(
            WhatsAppNumber.organization_id == org_id, WhatsAppNumber.deleted_at.is_(None)
        )
    ).scalar_one()


plans.register_usage_counter("whatsapp_numbers", _count_numbers)
