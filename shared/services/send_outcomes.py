"""Sends pipeline, the outcomes: what Meta answered for a batch, recorded in one transaction, and what a
dead dispatcher left `sending`, settled.

- `record_batch`: wamids, retries, failures, holds and pauses of the whole batch in one
  transaction (the verdicts come from shared/services/send_policy.py); the timeline lines go after
  commit in one insert_many (shared/aftercommit.py).
- `recover_number` / `settle_stuck_sends`: a message still in the number's "not sent yet" set
  certainly never left and goes back to `queued`; any other may have gone and becomes `unknown`,
  never resent, settled by its status webhook (shared/services/statuses.py).

Leases, arming and the claim are in shared/services/sending.py.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from shared.audit import audit_on_commit
from shared.models import Message, MessageStatus, WhatsAppNumber
from shared.models.base import utcnow
from shared.services import alerts, conversations, messages
from shared.services.send_policy import Decision, Verdict
from shared.services.sending import Batch, Outgoing, messages_fail, untake_all

log = structlog.get_logger(__name__)


# -- the batch -------------------------------------------------------------------------------------


@dataclass
class Outcomes:
    """What happened to each message of a batch, filled by the sending threads."""

    sent: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (message id, wamid)
    decided: list[tuple[Outgoing, Decision]] = field(default_factory=list)
    not_sent: list[uuid.UUID] = field(default_factory=list)  # claimed, never left (held back): queued again as they were
    media_ids: list[tuple[uuid.UUID, str]] = field(default_factory=list)


def record_batch(session: Session, *, batch: Batch, outcomes: Outcomes) -> None:
    """The whole batch's outcome in one transaction (the caller commits)."""
    now = utcnow()
    for message_id, media_id in outcomes.media_ids:
        messages.record_media_id(session, message_id=message_id, media_id=media_id)
    if outcomes.sent:
        _record_sent(session, outcomes.sent, now)
    if outcomes.not_sent:
        session.execute(
            update(Message).where(Message.id.in_(outcomes.not_sent), Message.status == MessageStatus.sending)
            .values(status=MessageStatus.queued, attempts=Message.attempts - 1, updated_at=now)
            .execution_options(synchronize_session=False, all_tenants=True))
    paused = None
    for item, decision in outcomes.decided:
        if decision.verdict is Verdict.UNKNOWN:
            _set(session, item.message_id, (MessageStatus.sending,), status=MessageStatus.unknown,
                 error_code=decision.code, error_message=decision.reason[:2000], updated_at=now)
            log.warning("messages.outcome_unknown", message_id=str(item.message_id), reason=decision.reason)
        elif decision.verdict is Verdict.FAIL:
            message = session.get(Message, item.message_id, with_for_update=True)
            if message is not None and message.status in (MessageStatus.sending, MessageStatus.queued):
                messages_fail(session, message, code=decision.code, reason=decision.reason)
                log.info("sends.failed", message_id=str(item.message_id), code=decision.code)
        else:  # retry, hold the number or the recipient, pause: back to queued for a later attempt
            if decision.verdict is Verdict.PAUSE_NUMBER:
                paused = decision.reason
            _set(session, item.message_id, (MessageStatus.sending, MessageStatus.queued),
                 status=MessageStatus.queued, next_attempt_at=now + dt.timedelta(seconds=decision.delay_seconds),
                 error_code=decision.code, error_message=decision.reason[:2000], updated_at=now)
    if paused is not None:
        pause_number(session, number_id=batch.number_id, reason=paused)


def _set(session: Session, message_id: uuid.UUID, when: tuple[MessageStatus, ...], **values: Any) -> None:
    session.execute(update(Message).where(Message.id == message_id, Message.status.in_(when)).values(**values)
                    .execution_options(synchronize_session=False, all_tenants=True))


_MARK_SENT = text("""
UPDATE messages m SET status = 'sent', wamid = COALESCE(m.wamid, v.wamid), sent_at = COALESCE(m.sent_at, :now),
       error_code = NULL, error_message = NULL, updated_at = :now
FROM (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id uuid, wamid text)) v
WHERE m.id = v.id AND m.status IN ('sending', 'unknown', 'queued')
RETURNING m.id, m.organization_id, m.conversation_id, m.contact_id, m.sender_user_id, m.type, m.content, m.sequence,
          m.wamid
""")
_NOTE_WAMID = text("""
UPDATE messages m SET wamid = v.wamid
FROM (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id uuid, wamid text)) v
WHERE m.id = v.id AND m.wamid IS NULL
""")
_COUNT_CONVERSATIONS = text("""
UPDATE conversations c SET last_outbound_at = :now, last_message_at = :now, last_message_preview = v.preview,
       messages_out_count = c.messages_out_count + v.n,
       first_response_at = COALESCE(c.first_response_at, CASE WHEN v.by_user THEN CAST(:now AS timestamptz) END)
FROM (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id uuid, n int, preview text, by_user boolean)) v
WHERE c.id = v.id
""")
_COUNT_CONTACTS = text("""
UPDATE contacts k SET first_outbound_at = COALESCE(k.first_outbound_at, :now), last_outbound_at = :now,
       messages_out_count = k.messages_out_count + v.n
FROM (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id uuid, n int)) v
WHERE k.id = v.id
""")


def _record_sent(session: Session, sent: list[tuple[uuid.UUID, str]], now: dt.datetime) -> None:
    """Graph accepted them. A status webhook may have beaten us here (then it counted them, and we only
    note the wamid); nothing is moved backwards."""
    rows = json.dumps([{"id": str(i), "wamid": w} for i, w in sent])
    changed = session.execute(_MARK_SENT, {"rows": rows, "now": now}).all()
    if len(changed) < len(sent):
        session.execute(_NOTE_WAMID, {"rows": rows})
    if not changed:
        return
    per_conversation: dict[uuid.UUID, dict[str, Any]] = {}
    per_contact: dict[uuid.UUID, int] = {}
    for row in sorted(changed, key=lambda r: r.sequence):
        entry = per_conversation.setdefault(row.conversation_id, {"id": str(row.conversation_id), "n": 0,
                                                                  "by_user": False})
        entry["n"] += 1
        entry["preview"] = conversations.preview_of(row.type, row.content)
        entry["by_user"] = entry["by_user"] or row.sender_user_id is not None
        per_contact[row.contact_id] = per_contact.get(row.contact_id, 0) + 1
        _timeline_sent(session, row)
    # Row locks in id order: the inbound pipeline updates the same conversations and contacts.
    session.execute(_COUNT_CONVERSATIONS, {"now": now, "rows": json.dumps(
        sorted(per_conversation.values(), key=lambda e: e["id"]))})
    session.execute(_COUNT_CONTACTS, {"now": now, "rows": json.dumps(
        sorted(({"id": str(k), "n": n} for k, n in per_contact.items()), key=lambda e: e["id"]))})


def _timeline_sent(session: Session, row: Any) -> None:
    for subject_type, subject_id in (("message", row.id), ("conversation", row.conversation_id)):
        audit_on_commit(session, org_id=row.organization_id, action="messages.sent", subject_type=subject_type,
                        subject_id=subject_id, actor_id=None, data={"wamid": row.wamid, "message_id": str(row.id)},
                        event_id=f"message:{row.id}:sent:{subject_type}")


def pause_number(session: Session, *, number_id: uuid.UUID, reason: str) -> None:
    """Meta refused the number's token or account: its sends wait (queued) until someone fixes it."""
    number = session.get(WhatsAppNumber, number_id, with_for_update=True)
    if number is None or number.sends_paused_at is not None:
        return
    number.sends_paused_at = utcnow()
    number.sends_paused_reason = reason[:2000]
    audit_on_commit(session, org_id=number.organization_id, action="numbers.sends_paused", subject_type="number",
                    subject_id=number.id, actor_id=None, data={"reason": reason[:500], "alert": True})
    log.error("numbers.sends_paused", number_id=str(number_id), reason=reason)
    alerts.raise_alert(session, org_id=number.organization_id, kind="number_paused", subject_type="number",
                       subject_id=number.id, message=f"Sends paused on {number.display_phone_number}: {reason[:300]}",
                       data={"reason": reason[:500]})


# -- what a dead dispatcher left -----------------------------------------------------------------


def _settle(session: Session, rows: list[tuple[uuid.UUID, uuid.UUID]], reason: str) -> tuple[int, int]:
    """`sending` rows nobody is sending any more: never left → queued again; may have left → unknown."""
    by_number: dict[uuid.UUID, list[str]] = {}
    for message_id, number_id in rows:
        by_number.setdefault(number_id, []).append(str(message_id))
    never_left: list[str] = []
    for number_id, ids in by_number.items():
        never_left.extend(untake_all(number_id, ids))
    maybe_left = [message_id for message_id, _ in rows if str(message_id) not in set(never_left)]
    now = utcnow()
    if never_left:
        session.execute(update(Message).where(Message.id.in_(never_left), Message.status == MessageStatus.sending)
                        .values(status=MessageStatus.queued, attempts=Message.attempts - 1, updated_at=now)
                        .execution_options(synchronize_session=False, all_tenants=True))
    if maybe_left:
        session.execute(update(Message).where(Message.id.in_(maybe_left), Message.status == MessageStatus.sending)
                        .values(status=MessageStatus.unknown, error_code="unknown_outcome", error_message=reason,
                                updated_at=now)
                        .execution_options(synchronize_session=False, all_tenants=True))
    return len(never_left), len(maybe_left)


def recover_number(session: Session, *, number_id: uuid.UUID) -> tuple[int, int]:
    """A dispatcher taking a number over settles what the previous one left `sending` (it holds the lease,
    so nobody else sends on this number; the "not sent yet" set decides, not a clock)."""
    rows = session.execute(
        select(Message.id, Message.number_id).where(Message.number_id == number_id,
                                                    Message.status == MessageStatus.sending)
        .with_for_update(skip_locked=True).execution_options(all_tenants=True)
    ).all()
    if not rows:
        return 0, 0
    return _settle(session, [(r[0], r[1]) for r in rows],
                   "the dispatcher stopped while sending; waiting for Meta's status")


def settle_stuck_sends(session: Session, *, older_than: dt.datetime) -> int:
    """Messages left `sending` past the send lease (their worker died): queued again if their request never
    left, else `unknown` (they may have gone: settled by status webhooks, never resent)."""
    rows = session.execute(
        select(Message.id, Message.number_id).where(Message.status == MessageStatus.sending,
                                                    Message.updated_at < older_than)
        .with_for_update(skip_locked=True).limit(1000).execution_options(all_tenants=True)
    ).all()
    if not rows:
        return 0
    return sum(_settle(session, [(r[0], r[1]) for r in rows],
                       "the worker stopped while sending; waiting for Meta's status"))


# -- one message at a time (tests and tools) -----------------------------------------------------


def record_sent(session: Session, *, message_id: uuid.UUID, wamid: str) -> None:
    _record_sent(session, [(message_id, wamid)], utcnow())
    session.expire_all()


def mark_unknown(session: Session, *, message_id: uuid.UUID, reason: str) -> None:
    """The request may have reached Meta: wait for its status webhook instead of sending again."""
    _set(session, message_id, (MessageStatus.sending,), status=MessageStatus.unknown, error_code="unknown_outcome",
         error_message=reason[:2000], updated_at=utcnow())
    session.expire_all()
