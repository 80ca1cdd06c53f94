"""Webhooks pipeline: Meta's calls, from the raw bytes at the door to numbers and templates updated.

Intake (in the request, milliseconds): check X-Hub-Signature-256 over the raw body against the app
secret of *each* number the payload names (a body signed by one tenant never writes into another), store the bytes (deduplicated by their SHA-256: Meta
repeats deliveries), publish `webhooks.process_event` after commit.

Processing (webhooks pool): claim the row, archive the payload to the event log, apply template
and number updates, and hand `messages` / `statuses` changes to the inbound pipeline
(shared/services/inbound.py), in arrival order per number. Every step is idempotent, so a redelivered task changes nothing more.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared import events
from shared.models import MessageTemplate, NumberStatus, WebhookEvent, WebhookEventStatus, WhatsAppNumber
from shared.models.base import utcnow
from shared.queueing.names import PROCESS_WEBHOOK, SYNC_NUMBER
from shared.queueing.publish import enqueue_on_commit
from shared.redis_client import get_redis
from shared.services import inbound, numbers
from shared.services.jobs import create_job
from shared.settings import get_settings
from shared.whatsapp.payloads import FieldChange, MessagesChange, WebhookPayloadError, parse_webhook, phone_number_ids, waba_ids
from shared.whatsapp.signatures import verify_signature

log = structlog.get_logger(__name__)
BAD_SIGNATURE_COUNTER = "pytake:webhooks:bad_signatures"
MESSAGES = "messages"
EARLIER_BATCH = 200


class WebhookSignatureError(Exception):
    """Missing or wrong X-Hub-Signature-256: refused, nothing stored."""


@dataclass(frozen=True)
class Intake:
    event_id: uuid.UUID | None  # None: a repeat of a payload already stored
    routable: bool


def _routes_named(session: Session, body: bytes, *, fresh: bool = False) -> tuple[list[numbers.Route], bool]:
    """The numbers a payload names, and whether the answer may be stale (served from the route cache)."""
    ids = phone_number_ids(body)
    if ids:
        return numbers.routes_for_phone_number_ids(session, ids, fresh=fresh), not fresh
    # Fields without a phone_number_id (templates, quality, account) name the WABA: rare, never cached.
    wabas = waba_ids(body)
    named = list(session.execute(
        select(WhatsAppNumber).where(WhatsAppNumber.waba_id.in_(wabas)).execution_options(all_tenants=True)
    ).scalars()) if wabas else []
    return [numbers.Route(n.phone_number_id, n.organization_id, secret)
            for n, secret in zip(named, numbers.app_secrets(named))], False


def _signed_for_every_number(body: bytes, signature: str | None, routes: list[numbers.Route]) -> bool | None:
    """True only when the signature matches the secret of *every* number the payload names.

    A body naming numbers of two organizations, signed with one organization's secret, is refused
    whole: accepting it would let one tenant write into another. Each number accepts its own secret
    or the app-wide one. None when no number has a secret to check against (nothing is configured).
    """
    app_wide = get_settings().whatsapp_app_secret
    checked = False
    for route in routes:
        secrets = [secret for secret in (route.app_secret, app_wide) if secret]
        if not secrets:
            continue
        checked = True
        if not verify_signature(body, signature, secrets):
            return False
    if not checked and app_wide:
        return verify_signature(body, signature, [app_wide])
    return True if checked else None


def receive_webhook(session: Session, *, body: bytes, signature: str | None) -> Intake:
    """Verify and store one POST. Raises WebhookSignatureError; never anything else for a readable body."""
    try:
        routes, maybe_stale = _routes_named(session, body)
    except (WebhookPayloadError, ValueError):
        routes, maybe_stale = [], False
    signed = _signed_for_every_number(body, signature, routes)
    if signed is False and maybe_stale:  # a secret rotated since it was cached
        routes, _ = _routes_named(session, body, fresh=True)
        signed = _signed_for_every_number(body, signature, routes)
    if signed is False:
        get_redis().incr(BAD_SIGNATURE_COUNTER)
        log.warning("webhooks.bad_signature", numbers=[route.phone_number_id for route in routes])
        raise WebhookSignatureError("X-Hub-Signature-256 does not match")
    routable = bool(routes)
    orgs = {route.organization_id for route in routes}
    try:
        fields = sorted({change.field for change in parse_webhook(body).changes})
    except WebhookPayloadError:
        fields, routable = [], False
    digest = hashlib.sha256(body).hexdigest()
    # Core on the session's connection: the ORM's execute machinery is the costliest part of this hot path.
    event_id = session.connection().execute(
        insert(WebhookEvent)
        .values(
            body=body,
            body_sha256=digest,
            organization_id=orgs.pop() if len(orgs) == 1 else None,
            phone_number_ids=sorted(route.phone_number_id for route in routes),
            fields=fields,
            has_messages=MESSAGES in fields,
            status=WebhookEventStatus.received if routable else WebhookEventStatus.unroutable,
        )
        .on_conflict_do_nothing(index_elements=[WebhookEvent.body_sha256])
        .returning(WebhookEvent.id)
    ).scalar_one_or_none()
    if event_id is not None and routable:
        enqueue_on_commit(session, PROCESS_WEBHOOK, event_id=str(event_id), org_id=None)
    log.info("webhooks.received", event_id=event_id, duplicate=event_id is None, routable=routable)
    return Intake(event_id=event_id, routable=routable)


def _claim(session: Session, event_id: uuid.UUID) -> WebhookEvent | None:
    return session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id,
               WebhookEvent.status.in_([WebhookEventStatus.received, WebhookEventStatus.processing]))
        .values(status=WebhookEventStatus.processing, attempts=WebhookEvent.attempts + 1)
        .returning(WebhookEvent)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).scalar_one_or_none()


def _lock_numbers(session: Session, phone_number_ids: list[str]) -> None:
    """One processor per number at a time (sorted, so two multi-number payloads never deadlock)."""
    for phone_number_id in sorted(phone_number_ids):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"pytake:inbound:{phone_number_id}"})


def _earlier_pending(session: Session, event: WebhookEvent) -> list[uuid.UUID]:
    """Payloads for the same numbers that arrived before this one and wait: they go first."""
    return list(session.execute(
        select(WebhookEvent.id)
        .where(WebhookEvent.status.in_([WebhookEventStatus.received, WebhookEventStatus.processing]),
               WebhookEvent.has_messages.is_(True),
               WebhookEvent.phone_number_ids.overlap(event.phone_number_ids),
               tuple_(WebhookEvent.created_at, WebhookEvent.id) < tuple_(event.created_at, event.id))
        .order_by(WebhookEvent.created_at, WebhookEvent.id)
        .limit(EARLIER_BATCH)
    ).scalars())


def process_event(session: Session, *, event_id: uuid.UUID | str) -> bool:
    """Apply one stored payload; False when it was processed already (a repeat task).

    Payloads carrying messages are applied in arrival order per number: this processor takes the
    numbers' lock, then applies every earlier payload still waiting before its own (their own
    tasks then find them done), so several workers never reorder one customer's messages.
    """
    event_uuid = uuid.UUID(str(event_id))
    event = session.get(WebhookEvent, event_uuid)
    if event is None or event.status not in (WebhookEventStatus.received, WebhookEventStatus.processing):
        return False
    if event.has_messages:
        _lock_numbers(session, event.phone_number_ids)
        for earlier_id in _earlier_pending(session, event):
            _apply(session, earlier_id)
    return _apply(session, event_uuid)


def _apply(session: Session, event_id: uuid.UUID) -> bool:
    event = _claim(session, event_id)
    if event is None:
        return False
    try:
        payload = parse_webhook(event.body)
    except WebhookPayloadError as exc:
        event.status, event.error = WebhookEventStatus.failed, str(exc)[:2000]
        log.warning("webhooks.unparseable", event_id=event.id, error=str(exc))
        return True
    events.append_event(
        org_id=event.organization_id, event="webhooks.received", subject_type="webhook_event",
        subject_id=event.id, event_id=f"webhook:{event.id}",
        data={"fields": event.fields, "body": event.body.decode("utf-8", errors="replace")},
    )
    routed = inbound.numbers_by_phone_number_id(session, set(event.phone_number_ids))
    for change in payload.changes:
        if isinstance(change, MessagesChange):
            number = routed.get(change.metadata.phone_number_id)
            if number is not None:  # a number deleted since intake: the raw payload stays archived
                inbound.process_messages_change(session, number=number, change=change)
            continue
        handler = FIELD_HANDLERS.get(change.field)
        if handler is not None:
            handler(session, change)
    event.status = WebhookEventStatus.processed
    event.processed_at = utcnow()
    if event.has_messages:
        event.messages_processed_at = event.processed_at
    session.flush()
    return True


def _template(session: Session, change: FieldChange) -> MessageTemplate | None:
    value = change.value
    query = select(MessageTemplate).where(MessageTemplate.waba_id == change.waba_id).execution_options(all_tenants=True)
    if value.get("message_template_id"):
        found = session.execute(
            query.where(MessageTemplate.meta_template_id == str(value["message_template_id"]))
        ).scalar_one_or_none()
        if found is not None:
            return found
    return session.execute(query.where(
        MessageTemplate.name == value.get("message_template_name"),
        MessageTemplate.language == value.get("message_template_language"),
    )).scalar_one_or_none()


def _template_status(session: Session, change: FieldChange) -> None:
    template = _template(session, change)
    if template is None:
        log.info("webhooks.unknown_template", name=change.value.get("message_template_name"))
        return
    template.status = change.value.get("event", template.status)
    reason = change.value.get("reason")
    template.rejected_reason = reason if reason and reason != "NONE" else None
    if change.value.get("message_template_id"):
        template.meta_template_id = str(change.value["message_template_id"])
    log.info("templates.status_changed", template_id=template.id, status=template.status)


def _template_quality(session: Session, change: FieldChange) -> None:
    template = _template(session, change)
    if template is not None:
        template.quality_score = change.value.get("new_quality_score", template.quality_score)


def _template_category(session: Session, change: FieldChange) -> None:
    template = _template(session, change)
    if template is not None and change.value.get("new_category") and "correct_category" not in change.value:
        template.category = change.value["new_category"]


def _number_quality(session: Session, change: FieldChange) -> None:
    """No phone_number_id in this field: the number is found by its display number within the WABA."""
    display = "".join(ch for ch in str(change.value.get("display_phone_number", "")) if ch.isdigit())
    number = session.execute(
        select(WhatsAppNumber).where(WhatsAppNumber.waba_id == change.waba_id,
                                     WhatsAppNumber.display_phone_number == display)
        .execution_options(all_tenants=True)
    ).scalar_one_or_none()
    if number is None:
        return
    event = change.value.get("event")
    if event == "FLAGGED":
        number.status, number.quality_rating = NumberStatus.flagged, "RED"
    elif event == "UNFLAGGED":
        number.status = NumberStatus.connected
    if change.value.get("current_limit"):
        number.messaging_limit_tier = change.value["current_limit"]
    # The webhook says what happened, not the whole state: read the exact rating and tier back from Graph.
    create_job(session, org_id=number.organization_id, kind="numbers.sync", task_name=SYNC_NUMBER,
               params={"number_id": str(number.id)})
    log.info("numbers.quality_event", number_id=number.id, meta_event=event)


def _account(session: Session, change: FieldChange) -> None:
    event = change.value.get("event")
    status = {"ACCOUNT_RESTRICTION": NumberStatus.restricted, "DISABLED_UPDATE": NumberStatus.restricted,
              "ACCOUNT_DELETED": NumberStatus.disconnected}.get(event)
    if status is not None:
        session.execute(
            update(WhatsAppNumber).where(WhatsAppNumber.waba_id == change.waba_id).values(status=status)
            .execution_options(synchronize_session=False, all_tenants=True)
        )


FIELD_HANDLERS = {
    "message_template_status_update": _template_status,
    "message_template_quality_update": _template_quality,
    "template_category_update": _template_category,
    "phone_number_quality_update": _number_quality,
    "account_update": _account,
}


def fail_event(session: Session, *, event_id: uuid.UUID | str, error: str) -> None:
    session.execute(
        update(WebhookEvent).where(WebhookEvent.id == uuid.UUID(str(event_id)))
        .values(status=WebhookEventStatus.failed, error=error[:2000])
    )


def stale_events(session: Session, *, older_than, limit: int = 500) -> list[uuid.UUID]:
    """Payloads stored but not processed (a lost publish, a worker that died mid-way): the sweep re-publishes them."""
    return list(session.execute(
        select(WebhookEvent.id)
        .where(WebhookEvent.status.in_([WebhookEventStatus.received, WebhookEventStatus.processing]),
               WebhookEvent.updated_at < older_than)
        .order_by(WebhookEvent.created_at)
        .limit(limit)
    ).scalars())
