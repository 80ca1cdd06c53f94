"""Sends pipeline, the steps: arm a number's dispatcher, claim a batch, record what Meta answered.

A message row (`queued`) is all any pool writes; after its commit `arm_on_commit` takes the
number's dispatcher lease (Redis `SET NX PX`) and publishes `sends.dispatch_number` only when no
dispatcher holds it. The dispatcher (workers/tasks/sends.py) loops over these steps:

- `claim_batch`: the number's due messages, urgent (agent, system, bot) before bulk (campaign), a
  conversation's messages in their queued order and never past an earlier one that waits for a
  retry (that holds its own conversation only), `FOR UPDATE SKIP LOCKED`; consent, trial and the
  24 h window re-checked set-wise; queued → sending in one transaction committed before any
  request leaves. Each claimed id is also put in the number's Redis "not sent yet" set.
- before each request leaves, its id is taken out of that set (`SREM`, atomic): whoever removes it
  owns the decision. A dead dispatcher's messages still in the set certainly never left and go back
  to `queued` (`recover_number`, the sweep); the others may have gone and become `unknown`, never
  resent, settled by their status webhook (our id in `biz_opaque_callback_data`).
- `record_batch`: wamids, retries, failures, holds and pauses of the whole batch in one
  transaction; the timeline lines go after commit in one insert_many (shared/aftercommit.py).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from shared import aftercommit
from shared.audit import audit_on_commit
from shared.models import (
    Contact,
    Conversation,
    Message,
    MessageStatus,
    SenderType,
    SubscriptionStatus,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.queueing.names import DISPATCH_NUMBER
from shared.queueing.publish import publish_now
from shared.redis_client import get_redis, script
from shared.services import consent, conversations, messages
from shared.services.send_policy import Decision, Verdict

log = structlog.get_logger(__name__)

LEASE_PREFIX = "pytake:sends:dispatcher:"
UNSENT_PREFIX = "pytake:sends:unsent:"
LEASE_SECONDS = 10.0  # renewed every couple of seconds by a live dispatcher; a dead one's lapses this soon
UNSENT_TTL_SECONDS = 7 * 24 * 3600
URGENT_SENDERS = (SenderType.agent, SenderType.system, SenderType.bot)  # a person is waiting on these
_ARM_KIND = "sends.arm"

# -- the dispatcher lease ------------------------------------------------------------------------

_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not held then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_key(number_id: uuid.UUID | str) -> str:
    return f"{LEASE_PREFIX}{number_id}"


def unsent_key(number_id: uuid.UUID | str) -> str:
    return f"{UNSENT_PREFIX}{number_id}"


def take_lease(number_id: uuid.UUID | str, token: str) -> bool:
    return bool(get_redis().set(lease_key(number_id), token, nx=True, px=int(LEASE_SECONDS * 1000)))


def renew_lease(number_id: uuid.UUID | str, token: str) -> bool:
    """Still ours (or lapsed and free again, then taken back): False means another dispatcher has it."""
    return bool(script(_RENEW)(keys=[lease_key(number_id)], args=[token, int(LEASE_SECONDS * 1000)]))


def release_lease(number_id: uuid.UUID | str, token: str) -> None:
    script(_RELEASE)(keys=[lease_key(number_id)], args=[token])


def arm(pairs: Iterable[tuple[str, str]]) -> int:
    """Make sure each number has a dispatcher: publish one where no lease is held. Returns how many started."""
    started = 0
    for number_id, org_id in dict.fromkeys(pairs):
        token = uuid.uuid4().hex
        try:
            if not take_lease(number_id, token):
                continue  # a dispatcher holds it: it claims what was just committed on its next loop
            publish_now(DISPATCH_NUMBER, number_id=number_id, org_id=org_id, lease=token)
            started += 1
        except Exception:  # committed rows stay queued: the sweep re-arms the number
            log.exception("sends.arm_failed", number_id=number_id)
    return started


def arm_on_commit(session: Session, *, number_id: uuid.UUID, org_id: uuid.UUID) -> None:
    aftercommit.defer(session, _ARM_KIND, (str(number_id), str(org_id)))


aftercommit.register(_ARM_KIND, arm)

# -- claim ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    to: str
    type: str
    content: Any
    context_wamid: str | None
    attempts: int  # including this one


@dataclass
class Batch:
    number_id: uuid.UUID
    org_id: uuid.UUID
    phone_number_id: str
    access_token_encrypted: str
    throughput_mps: int
    items: list[Outgoing] = field(default_factory=list)
    paused: bool = False
    claimed_in: float = 0.0  # seconds the claim took (the dispatcher logs it per batch)


_NUMBER = text("""
SELECT n.id, n.organization_id, n.phone_number_id, n.access_token_encrypted, n.throughput_mps,
       n.sends_paused_at IS NOT NULL OR n.deleted_at IS NOT NULL AS paused,
       o.suspended_at IS NOT NULL AS is_suspended, o.subscription_status::text AS subscription_status
FROM whatsapp_numbers n JOIN organizations o ON o.id = n.organization_id
WHERE n.id = :number_id
""")

# A message may go when every earlier pending message of its conversation goes before it: none of
# them is in flight, waiting for a later attempt, or bulk behind this urgent one (the ORDER BY then
# puts each earlier one ahead of it in this same batch). Per conversation, where the first such
# obstacle sits comes from window functions over one pass of the number's pending rows. Not a join
# with a GROUP BY: on a table whose statistics are stale (a campaign queued a moment ago, before
# autoanalyze) the planner expects one row and loops the aggregate once per candidate, 1.5 s per
# claim with 3,000 queued; this shape has no plan that bad. FOR UPDATE cannot sit beside window
# functions, so the outer query locks the chosen rows by id.
_CANDIDATES = text("""
SELECT m.id FROM messages m
WHERE m.id IN (
  SELECT id FROM (
    SELECT id, status, next_attempt_at, sender_type, sequence,
           min(sequence) FILTER (WHERE status = 'sending' OR next_attempt_at > :now) OVER conversation AS blocked_from,
           min(sequence) FILTER (WHERE sender_type = 'campaign') OVER conversation AS first_bulk
    FROM messages
    WHERE number_id = :number_id AND status IN ('queued', 'sending') AND direction = 'outbound'
    WINDOW conversation AS (PARTITION BY conversation_id)
  ) pending
  WHERE status = 'queued' AND next_attempt_at <= :now
    AND (blocked_from IS NULL OR sequence < blocked_from)
    AND (sender_type = 'campaign' OR first_bulk IS NULL OR sequence < first_bulk)
)
  AND m.status = 'queued'
ORDER BY (m.sender_type = 'campaign'), m.sequence
LIMIT :limit
FOR UPDATE OF m SKIP LOCKED
""")


def _category(template_category: str | None) -> consent.MessageCategory:
    if template_category is None:
        return consent.MessageCategory.service
    name = template_category.lower()
    return consent.MessageCategory(name) if name in ("marketing", "utility") else consent.MessageCategory.utility


def claim_batch(session: Session, *, number_id: uuid.UUID | str, max_batch: int = 100,
                horizon_seconds: float = 0.25) -> Batch | None:
    """Claim the number's due messages (queued → sending), as many as its pace sends in `horizon_seconds`
    (at least 1, at most `max_batch`); None: the number is gone.

    The caller commits before any request leaves. Messages refused at send time (consent, window,
    trial) fail here, set-wise.
    """
    row = session.execute(_NUMBER, {"number_id": str(number_id)}).one_or_none()
    if row is None:
        return None
    batch = Batch(number_id=row.id, org_id=row.organization_id, phone_number_id=row.phone_number_id,
                  access_token_encrypted=row.access_token_encrypted, throughput_mps=row.throughput_mps,
                  paused=row.paused)
    if batch.paused:
        return batch
    now = utcnow()
    limit = max(1, min(max_batch, int(batch.throughput_mps * horizon_seconds)))
    ids = list(session.execute(_CANDIDATES, {"number_id": str(batch.number_id), "now": now, "limit": limit})
               .scalars())
    if not ids:
        return batch
    loaded = session.execute(
        select(Message, Conversation.window_expires_at, Contact)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.id.in_(ids))
        .execution_options(all_tenants=True, include_deleted=True)
    ).all()
    template_categories = _template_categories(session, [m.template_id for m, _, _ in loaded if m.template_id])
    order = {message_id: i for i, message_id in enumerate(ids)}
    loaded.sort(key=lambda r: order[r[0].id])
    org_refusal = _org_refusal(row.is_suspended, row.subscription_status)
    going: list[Message] = []
    for message, window_expires_at, contact in loaded:
        refusal = org_refusal or _refusal(message, window_expires_at, contact,
                                          template_categories.get(message.template_id), now)
        if refusal is not None:
            messages_fail(session, message, code=refusal[0], reason=refusal[1])
            continue
        going.append(message)
        batch.items.append(Outgoing(message.id, message.conversation_id, contact.wa_id, message.type,
                                    message.content, message.context_wamid, message.attempts + 1))
    if len(going) < len(loaded):
        session.flush()  # the refused ones, failed above
    if going:
        session.execute(
            update(Message).where(Message.id.in_([m.id for m in going]))
            .values(status=MessageStatus.sending, attempts=Message.attempts + 1, updated_at=now)
            .execution_options(synchronize_session=False, all_tenants=True)
        )
        redis = get_redis()
        pipe = redis.pipeline(transaction=False)
        pipe.sadd(unsent_key(batch.number_id), *[str(m.id) for m in going])
        pipe.expire(unsent_key(batch.number_id), UNSENT_TTL_SECONDS)
        pipe.execute()  # before the commit: if Redis is down nothing is claimed (the rollback keeps them queued)
    return batch


def _template_categories(session: Session, template_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not template_ids:
        return {}
    rows = session.execute(text("SELECT id, category FROM message_templates WHERE id = ANY(:ids)"),
                           {"ids": list(set(template_ids))})
    return {r.id: r.category for r in rows}


def _org_refusal(is_suspended: bool, subscription_status: str) -> tuple[str, str] | None:
    if is_suspended:
        return "organization_suspended", "This organization is suspended; contact support"
    if subscription_status == SubscriptionStatus.expired.value:
        return "trial_expired", "The free trial has ended; choose a plan to send messages again"
    return None


def _refusal(message: Message, window_expires_at: dt.datetime | None, contact: Contact,
             template_category: str | None, now: dt.datetime) -> tuple[str, str] | None:
    """The request-time rules (messages._refusal), again at send time."""
    verdict = consent.eligibility(contact, _category(template_category if message.template_id else None))
    if not verdict.eligible:
        return messages.ContactIneligibleError.code, verdict.message or "The contact cannot be messaged"
    if message.type != "template" and (window_expires_at is None or window_expires_at <= now):
        return (messages.WindowClosedError.code,
                "The 24-hour customer-service window closed while the message waited: only an approved template "
                "can be sent until the customer writes again")
    return None


def messages_fail(session: Session, message: Message, *, code: str, reason: str) -> None:
    message.status = MessageStatus.failed
    message.failed_at = utcnow()
    message.error_code, message.error_message = str(code), reason[:2000]
    messages._timeline(session, message, "failed", data={"error_code": str(code), "reason": reason[:500]})


def take_unsent(number_id: uuid.UUID | str, message_id: uuid.UUID | str) -> bool:
    """True: the caller now owns this message's one attempt (nobody settled it meanwhile); send it."""
    return bool(get_redis().srem(unsent_key(number_id), str(message_id)))


def untake_all(number_id: uuid.UUID | str, message_ids: list[str]) -> set[str]:
    """Take many out of the "not sent yet" set at once; the ids that were still in it."""
    if not message_ids:
        return set()
    pipe = get_redis().pipeline(transaction=False)
    for message_id in message_ids:
        pipe.srem(unsent_key(number_id), message_id)
    return {message_id for message_id, removed in zip(message_ids, pipe.execute()) if removed}


# -- record --------------------------------------------------------------------------------------


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


def due_numbers(session: Session) -> list[tuple[str, str]]:
    """(number id, org id) of every number with a due queued message: the sweep re-arms their dispatchers."""
    rows = session.execute(text("""
        SELECT DISTINCT m.number_id, m.organization_id FROM messages m
        JOIN whatsapp_numbers n ON n.id = m.number_id
        WHERE m.status = 'queued' AND m.direction = 'outbound' AND m.next_attempt_at <= now()
          AND n.sends_paused_at IS NULL AND n.deleted_at IS NULL""")).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def next_due_in(session: Session, *, number_id: uuid.UUID) -> float | None:
    """Seconds until the number's next queued message is due (0: now); None when none is queued."""
    at = session.execute(text(
        "SELECT min(next_attempt_at) FROM messages WHERE number_id = :n AND status = 'queued' "
        "AND direction = 'outbound'"), {"n": str(number_id)}).scalar()
    if at is None:
        return None
    return max(0.0, (at - utcnow()).total_seconds())


# -- one message at a time (tests and tools) -----------------------------------------------------


def claim_send(session: Session, *, message_id: uuid.UUID) -> bool:
    """queued → sending for one message (the batch claim does this for many)."""
    return session.execute(
        update(Message).where(Message.id == message_id, Message.status == MessageStatus.queued)
        .values(status=MessageStatus.sending, attempts=Message.attempts + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def record_sent(session: Session, *, message_id: uuid.UUID, wamid: str) -> None:
    _record_sent(session, [(message_id, wamid)], utcnow())
    session.expire_all()


def mark_unknown(session: Session, *, message_id: uuid.UUID, reason: str) -> None:
    """The request may have reached Meta: wait for its status webhook instead of sending again."""
    _set(session, message_id, (MessageStatus.sending,), status=MessageStatus.unknown, error_code="unknown_outcome",
         error_message=reason[:2000], updated_at=utcnow())
    session.expire_all()
