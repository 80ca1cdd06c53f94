"""Webhooks pipeline: Meta's calls, from the raw bytes at the door to numbers and templates updated.

Intake (in the request, web/intake.py ahead of Flask): the body is decoded once; X-Hub-Signature-256
is checked over the raw bytes against the app secret of *each* number the payload names (a body
signed by one tenant never writes into another); the bytes are stored (deduplicated by their
SHA-256: Meta repeats deliveries), the rows of concurrent requests in one INSERT and one commit
(shared/group_commit.py) on a connection kept open for it (shared.db.hot_connection); the request
answers once its row is durable. After the commit the intake makes sure a drain is pending. It does
not publish a task per request (that publish cost more than the rest of the request): a Redis
`SET NX` flag says "a drain is pending", and only the batch that set it publishes
`webhooks.drain`. The flag carries a TTL, and the message sweep publishes a drain when rows wait
past JOB_REQUEUE_AFTER_SECONDS, so a flag whose task was lost delays rows, never strands them.

Draining (webhooks pool): the drain clears the flag *before* it reads, so a row committed after its
read sets the flag again and gets a drain of its own. It then takes the waiting rows in arrival
order, in batches, each batch one transaction: parse, archive to the event log (one insert_many
after commit), apply template and number updates, and hand all the batch's `messages` changes to
the inbound pipeline at once (shared/services/inbound.py, set-wise).

Order: one drain applies rows at a time (a transaction-scoped advisory lock held per batch).
That one lock replaces the per-number lock taken for every payload: it is taken once per batch of
up to DRAIN_BATCH rows, not once per message, and since the batch is applied set-wise one drain
keeps up with Meta's pace. It guarantees arrival order per conversation (and across them) with no
row-ownership protocol between drains. Several drains (a pending one and a running one) simply
queue on the lock; the second then finds what arrived meanwhile. Scaling past one core is a
sharded lock (per number hash) taken by drains of their shard: not needed at today's targets.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import psycopg
import structlog
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from shared import aftercommit, event_backlog
from shared.db import hot_connection
from shared.group_commit import GroupCommit
from shared.models import Job, JobStatus, MessageTemplate, NumberStatus, WebhookEvent, WebhookEventStatus, WhatsAppNumber
from shared.models.base import utcnow
from shared.queueing.names import DRAIN_WEBHOOKS, SYNC_NUMBER
from shared.queueing.publish import publish_now
from shared.redis_client import get_redis
from shared.services import alerts, inbound, numbers, restrictions
from shared.services.jobs import create_job
from shared.settings import get_settings
from shared.whatsapp.payloads import (
    FieldChange,
    MessagesChange,
    WebhookPayload,
    WebhookPayloadError,
    change_fields,
    parse_document,
    phone_number_ids,
    waba_ids,
)
from shared.whatsapp.signatures import verify_signature

log = structlog.get_logger(__name__)
BAD_SIGNATURE_COUNTER = "pytake:webhooks:bad_signatures"
DRAIN_PENDING_FLAG = "pytake:webhooks:drain_pending"
# A drain published but lost (broker restart, a dropped message) only holds the flag this long.
DRAIN_FLAG_TTL_SECONDS = 30
DRAIN_LOCK_KEY = "pytake:webhooks:drain"
DRAIN_BATCH = 200
# Messages and statuses per batch: Meta sends up to about a hundred per payload, and a transaction of
# 200 such rows would hold locks for seconds (and once overflowed a statement's 65,535 parameters).
DRAIN_MAX_ITEMS = 1000
MESSAGES = "messages"
_ARCHIVE_KIND = "webhooks.archive"


class WebhookSignatureError(Exception):
    """Missing or wrong X-Hub-Signature-256: refused, nothing stored."""


@dataclass(frozen=True)
class Intake:
    event_id: uuid.UUID | None  # None: a repeat of a payload already stored
    routable: bool


# -- intake ---------------------------------------------------------------------------------


def _routes_named(lookups: Callable[[], Session], document: Any, *, fresh: bool = False
                  ) -> tuple[list[numbers.Route], bool]:
    """The numbers a payload names, and whether the answer may be stale (served from the route cache)."""
    ids = phone_number_ids(document) if isinstance(document, dict) else set()
    if ids:
        return numbers.routes_for_phone_number_ids(lookups, ids, fresh=fresh), not fresh
    # Fields without a phone_number_id (templates, quality, account) name the WABA: rare, never cached.
    wabas = waba_ids(document) if isinstance(document, dict) else set()
    named = list(lookups().execute(
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


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def receive_webhook(lookups: Callable[[], Session], *, body: bytes, signature: str | None) -> Intake:
    """Verify and store one POST. Raises WebhookSignatureError; never anything else for a readable body.

    `lookups()` gives the session that reads the numbers the route cache does not hold (most requests
    never open one); the row itself is written by the intake's group commit."""
    document = _decode(body)  # once: routing and fields read this one document (the drain parses it strictly)
    routes, maybe_stale = _routes_named(lookups, document)
    signed = _signed_for_every_number(body, signature, routes)
    if signed is False and maybe_stale:  # a secret rotated since it was cached
        routes, _ = _routes_named(lookups, document, fresh=True)
        signed = _signed_for_every_number(body, signature, routes)
    if signed is False:
        get_redis().incr(BAD_SIGNATURE_COUNTER)
        log.warning("webhooks.bad_signature", numbers=[route.phone_number_id for route in routes])
        raise WebhookSignatureError("X-Hub-Signature-256 does not match")
    orgs = {route.organization_id for route in routes}
    fields = change_fields(document)
    routable = bool(routes) and fields is not None
    event_id = _intake_commits.submit(_IntakeRow(
        body=body, organization_id=orgs.pop() if len(orgs) == 1 else None,
        phone_number_ids=sorted(route.phone_number_id for route in routes), fields=fields or [],
        status=WebhookEventStatus.received if routable else WebhookEventStatus.unroutable))
    # The ordinary case is one line per webhook at Meta's pace (the access log already has one): debug.
    (log.debug if event_id is not None and routable else log.info)(
        "webhooks.received", event_id=event_id, duplicate=event_id is None, routable=routable)
    return Intake(event_id=event_id, routable=routable)


@dataclass(frozen=True)
class _IntakeRow:
    body: bytes
    organization_id: uuid.UUID | None
    phone_number_ids: list[str]
    fields: list[str]
    status: WebhookEventStatus

    def params(self) -> tuple:
        return (self.body, hashlib.sha256(self.body).hexdigest(), self.organization_id, self.phone_number_ids,
                self.fields, MESSAGES in self.fields, self.status.value)


# The statement of the hottest request, rows of concurrent requests together (shared.group_commit), sent as
# a prepared statement on the driver's connection: through SQLAlchemy, building and compiling it cost more
# than the INSERT itself.
_INSERT_EVENTS = (
    "INSERT INTO webhook_events (body, body_sha256, organization_id, phone_number_ids, fields, has_messages, status)"
    " VALUES {values} ON CONFLICT (body_sha256) DO NOTHING RETURNING id, body_sha256"
)
_VALUES_ROW = "(%s, %s, %s, %s::varchar[], %s::varchar[], %s, %s::webhook_event_status)"


def _insert_events(rows: Sequence[_IntakeRow]) -> list[uuid.UUID | None]:
    """One INSERT (one commit) for the batch; per row its id, or None when the same bytes are stored already
    (Meta repeated a delivery, perhaps in this very batch). Then a drain is made sure of, after the commit."""
    params = [row.params() for row in rows]
    statement = _INSERT_EVENTS.format(values=", ".join([_VALUES_ROW] * len(rows)))
    flat = [value for row in params for value in row]
    try:
        returned = _execute_hot(statement, flat)
    except psycopg.OperationalError:  # a connection lost since the last batch; a repeat stores nothing twice
        returned = _execute_hot(statement, flat)
    stored = dict((sha, event_id) for event_id, sha in returned)
    ids = [stored.pop(row[1], None) for row in params]  # a body twice in the batch: the first one stored it
    if any(event_id is not None and row.status is WebhookEventStatus.received for event_id, row in zip(ids, rows)):
        arm_drain()
    return ids


def _execute_hot(statement: str, params: list) -> list[tuple]:
    with hot_connection() as connection:
        return connection.execute(statement, params, prepare=True).fetchall()


_intake_commits: GroupCommit[_IntakeRow, uuid.UUID | None] = GroupCommit(_insert_events)


def arm_drain() -> bool:
    """Make sure a drain is pending: publish one only if no other is (True when this call published).

    Called after the row's commit, never before: a drain that cleared the flag and read before the
    commit would miss the row, and this call is what gives it a drain of its own.
    """
    if not get_redis().set(DRAIN_PENDING_FLAG, b"1", nx=True, ex=DRAIN_FLAG_TTL_SECONDS):
        return False
    publish_now(DRAIN_WEBHOOKS, org_id=None)
    return True


def clear_drain_flag() -> None:
    """The drain's first step, before it reads a row (see the module docstring)."""
    get_redis().delete(DRAIN_PENDING_FLAG)


# -- draining -------------------------------------------------------------------------------


def _lock_drain(session: Session) -> None:
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": DRAIN_LOCK_KEY})


def _waiting(session: Session, *, limit: int, up_to: WebhookEvent | None = None) -> list[WebhookEvent]:
    query = (
        select(WebhookEvent)
        .where(WebhookEvent.status.in_([WebhookEventStatus.received, WebhookEventStatus.processing]))
        .order_by(WebhookEvent.sequence)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if up_to is not None:
        query = query.where(WebhookEvent.sequence <= up_to.sequence)
    return list(session.execute(query).scalars())


def drain_batch(session: Session, *, limit: int = DRAIN_BATCH, max_items: int = DRAIN_MAX_ITEMS) -> int:
    """Apply waiting rows, oldest first, set-wise: up to `limit` rows carrying up to `max_items` messages and
    statuses (always at least one row); how many rows were taken (0: none waited)."""
    _lock_drain(session)
    rows = _waiting(session, limit=limit)
    return _apply_rows(session, rows, max_items=max_items)


def process_event(session: Session, *, event_id: uuid.UUID | str) -> bool:
    """Apply one stored row (and every row that arrived before it and still waits); False when done already.

    The per-row task of before: a task still in a broker, and tests that apply one delivery.
    """
    event = session.get(WebhookEvent, uuid.UUID(str(event_id)))
    if event is None or event.status not in (WebhookEventStatus.received, WebhookEventStatus.processing):
        return False
    _lock_drain(session)
    session.refresh(event)
    if event.status not in (WebhookEventStatus.received, WebhookEventStatus.processing):
        return False  # a drain applied it while we waited for the lock
    rows = _waiting(session, limit=DRAIN_BATCH, up_to=event)
    if event not in rows:
        rows.append(event)
    _apply_rows(session, rows)
    return True


def _items(payload: WebhookPayload) -> int:
    return sum(len(change.messages) + len(change.statuses) if isinstance(change, MessagesChange) else 1
               for change in payload.changes)


def _parsed(rows: list[WebhookEvent], *, max_items: int | None = None
            ) -> tuple[list[tuple[WebhookEvent, WebhookPayload]], int]:
    """The rows' payloads in order until `max_items` is reached, and how many rows that took (unparseable
    ones fail here); the rows after them stay untouched for the next batch."""
    parsed = []
    now = utcnow()
    items = taken = 0
    for row in rows:
        try:
            payload = parse_document(_decode(row.body))
        except WebhookPayloadError as exc:
            row.attempts += 1
            row.status, row.error, row.processed_at = WebhookEventStatus.failed, str(exc)[:2000], now
            log.warning("webhooks.unparseable", event_id=row.id, error=str(exc))
            taken += 1
            continue
        items += _items(payload)
        if parsed and max_items is not None and items > max_items:
            break
        row.attempts += 1
        parsed.append((row, payload))
        taken += 1
    return parsed, taken


def _apply_rows(session: Session, rows: list[WebhookEvent], *, max_items: int | None = None) -> int:
    """Set-wise first; a batch that fails is applied row by row, so one bad row fails alone. How many rows
    were taken."""
    if not rows:
        return 0
    parsed, taken = _parsed(rows, max_items=max_items)
    buffered = aftercommit.snapshot(session)
    try:
        with session.begin_nested():
            _apply_parsed(session, parsed)
    except _NOT_A_ROW_PROBLEM:
        raise
    except Exception as exc:  # a bug or bad data in one row: find it
        aftercommit.restore(session, buffered)
        log.warning("webhooks.batch_failed", rows=len(parsed), error=str(exc))
        for row, payload in parsed:
            buffered = aftercommit.snapshot(session)
            try:
                with session.begin_nested():
                    _apply_parsed(session, [(row, payload)])
            except _NOT_A_ROW_PROBLEM:
                raise
            except Exception as row_exc:
                aftercommit.restore(session, buffered)
                row.status, row.error, row.processed_at = WebhookEventStatus.failed, repr(row_exc)[:2000], utcnow()
                log.exception("webhooks.row_failed", event_id=row.id)
    session.flush()
    return taken


def _apply_parsed(session: Session, parsed: list[tuple[WebhookEvent, WebhookPayload]]) -> None:
    routed = inbound.numbers_by_phone_number_id(
        session, {pid for row, _ in parsed for pid in row.phone_number_ids})
    changes: list[inbound.RoutedChange] = []
    for row, payload in parsed:
        aftercommit.defer(session, _ARCHIVE_KIND, {
            "org_id": row.organization_id, "event": "webhooks.received", "subject_type": "webhook_event",
            "subject_id": row.id, "event_id": f"webhook:{row.id}",
            "data": {"fields": row.fields, "body": row.body.decode("utf-8", errors="replace")},
        })
        for change in payload.changes:
            if isinstance(change, MessagesChange):
                number = routed.get(change.metadata.phone_number_id)
                if number is not None:  # a number deleted since intake: the raw payload stays archived
                    changes.append(inbound.RoutedChange(number=number, change=change))
                continue
            handler = FIELD_HANDLERS.get(change.field)
            if handler is not None:
                handler(session, change)
    inbound.process_changes(session, changes)
    now = utcnow()
    for row, _ in parsed:
        row.status, row.processed_at, row.error = WebhookEventStatus.processed, now, None
        if row.has_messages:
            row.messages_processed_at = now
    session.flush()


aftercommit.register(_ARCHIVE_KIND, event_backlog.write)


def _not_a_row_problem() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import InterfaceError, OperationalError

    return (OperationalError, InterfaceError)  # the database is away: the whole batch retries later


_NOT_A_ROW_PROBLEM = _not_a_row_problem()


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
    template.status_description = _status_description(change.value)
    if template.status in TEMPLATE_ALERTS:
        alerts.raise_alert(session, org_id=template.organization_id, kind=TEMPLATE_ALERTS[template.status],
                           subject_type="template", subject_id=template.id,
                           message=f"Template {template.name} ({template.language}) is {template.status.lower()}: "
                                   f"{template.rejected_reason or template.status_description or 'no reason given'}",
                           data={"reason": template.rejected_reason, "description": template.status_description},
                           seen_at=change.time)
    if change.value.get("message_template_id"):
        template.meta_template_id = str(change.value["message_template_id"])
    log.info("templates.status_changed", template_id=template.id, status=template.status)


TEMPLATE_ALERTS = {"REJECTED": "template_rejected", "PAUSED": "template_paused", "DISABLED": "template_disabled"}


def _status_description(value: dict[str, Any]) -> str | None:
    """What Meta says beyond the reason code: a rejection's reason and recommendation, a pause's or a
    disablement's title and description (None when it says nothing more)."""
    parts = []
    for key, fields in (("rejection_info", ("reason", "recommendation")), ("other_info", ("title", "description")),
                        ("disable_info", ("disable_date",))):
        info = value.get(key)
        if isinstance(info, dict):
            parts += [f"{field}: {info[field]}" for field in fields if info.get(field) not in (None, "")]
    return "; ".join(parts)[:2000] or None


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
    if event in ("FLAGGED", "DOWNGRADE"):
        alerts.raise_alert(session, org_id=number.organization_id, kind="quality_downgraded", subject_type="number",
                           subject_id=number.id, data={"event": event, "current_limit": change.value.get("current_limit")},
                           message=f"Number {number.display_phone_number}: Meta reports {event.lower()} "
                                   f"(limit {change.value.get('current_limit') or 'unchanged'})", seen_at=change.time)
    if event == "FLAGGED":
        number.status, number.quality_rating = NumberStatus.flagged, "RED"
    elif event == "UNFLAGGED":
        number.status = NumberStatus.connected
    if change.value.get("current_limit"):
        number.messaging_limit_tier = change.value["current_limit"]
    # The webhook says what happened, not the whole state: read the exact rating and tier back from Graph,
    # once: a sync still queued (the same update processed twice, or a burst of them) reads it all.
    if not _sync_queued(session, number):
        create_job(session, org_id=number.organization_id, kind="numbers.sync", task_name=SYNC_NUMBER,
                   params={"number_id": str(number.id)})
    log.info("numbers.quality_event", number_id=number.id, meta_event=event)


def _sync_queued(session: Session, number: WhatsAppNumber) -> bool:
    return session.execute(
        select(Job.id).where(Job.organization_id == number.organization_id, Job.kind == "numbers.sync",
                             Job.status == JobStatus.queued, Job.params["number_id"].astext == str(number.id))
        .limit(1).execution_options(all_tenants=True)
    ).first() is not None


def _account(session: Session, change: FieldChange) -> None:
    """Restrictions hold sends (shared.services.restrictions), bans disable them until reinstated, a deleted
    account disconnects its numbers; each raises the numbers' account_restricted alert, a reinstatement none."""
    event = change.value.get("event")
    ban_state = (change.value.get("ban_info") or {}).get("waba_ban_state") if event == "DISABLED_UPDATE" else None
    if event not in ("ACCOUNT_RESTRICTION", "DISABLED_UPDATE", "ACCOUNT_DELETED"):
        return
    now = utcnow()
    numbers_of_account = session.execute(
        select(WhatsAppNumber).where(WhatsAppNumber.waba_id == change.waba_id).execution_options(all_tenants=True)
    ).scalars().all()
    for number in numbers_of_account:
        if event == "ACCOUNT_RESTRICTION":
            restrictions.restrict(number, change.value.get("restriction_info") or [], now=now)
        elif event == "ACCOUNT_DELETED":
            number.status = NumberStatus.disconnected
        elif ban_state == "REINSTATE":
            restrictions.reinstate(number)
            continue
        elif ban_state == "DISABLE":
            restrictions.disable(number)
        alerts.raise_alert(session, org_id=number.organization_id, kind="account_restricted", subject_type="number",
                           subject_id=number.id,
                           message=f"Number {number.display_phone_number}: Meta reports {event.lower()}"
                                   + (f" ({ban_state.lower()})" if ban_state else ""),
                           data={key: change.value.get(key) for key in ("event", "restriction_info", "ban_info")
                                 if change.value.get(key) is not None}, seen_at=change.time)


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


def oldest_waiting_since(session: Session, *, older_than) -> bool:
    """Whether a row waits since before `older_than` (a drain lost with its flag set): the sweep drains."""
    return session.execute(
        select(WebhookEvent.id)
        .where(WebhookEvent.status.in_([WebhookEventStatus.received, WebhookEventStatus.processing]),
               WebhookEvent.created_at < older_than)
        .limit(1)
    ).first() is not None
