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
- `record_batch` and the settling of what a dead dispatcher left: shared/services/send_outcomes.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from shared import aftercommit, ratelimit
from shared.group_commit import GroupCommit
from shared.models import (
    Contact,
    Conversation,
    Message,
    MessageStatus,
    SenderType,
    SubscriptionStatus,
)
from shared.models.base import utcnow
from shared.queueing.names import DISPATCH_NUMBER
from shared.queueing.publish import publish_now
from shared.redis_client import get_redis, script
from shared.services import campaign_feedback, consent, messages

log = structlog.get_logger(__name__)

LEASE_PREFIX = "pytake:sends:dispatcher:"
UNSENT_PREFIX = "pytake:sends:unsent:"
WAKE_PREFIX = "pytake:sends:wake:"
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
# Take the number's lease, or, when a dispatcher holds it, leave it one wake-up (an idle dispatcher waits
# on that list, so a message queued while it waits for a retry leaves at once, not after the wait).
_TAKE_OR_WAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, 0)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
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


def wake_key(number_id: uuid.UUID | str) -> str:
    return f"{WAKE_PREFIX}{number_id}"


def take_lease_or_wake(number_id: uuid.UUID | str, token: str) -> bool:
    """True: the lease is ours, start a dispatcher. False: one holds it, and it is woken if it waits idle."""
    return bool(script(_TAKE_OR_WAKE)(keys=[lease_key(number_id), wake_key(number_id)],
                                      args=[token, int(LEASE_SECONDS * 1000)]))


def wait_for_work(number_id: uuid.UUID | str, seconds: float) -> None:
    """The idle dispatcher's wait: `seconds`, or less when a message is queued on the number meanwhile."""
    get_redis().blpop([wake_key(number_id)], timeout=seconds)


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
            if not take_lease_or_wake(number_id, token):
                continue  # a dispatcher holds it: it claims what was just committed on its next loop
            publish_now(DISPATCH_NUMBER, number_id=number_id, org_id=org_id, lease=token)
            started += 1
        except Exception:  # committed rows stay queued: the sweep re-arms the number
            log.exception("sends.arm_failed", number_id=number_id)
    return started


def arm_on_commit(session: Session, *, number_id: uuid.UUID, org_id: uuid.UUID) -> None:
    aftercommit.defer(session, _ARM_KIND, (str(number_id), str(org_id)))


def _arm_together(batches: Sequence[list[tuple[str, str]]]) -> list[None]:
    arm(pair for pairs in batches for pair in pairs)  # the same number named by several commits: armed once
    return [None] * len(batches)


# Transactions committed at the same moment in other threads (the web's replies) arm their numbers together.
_arms: GroupCommit[list[tuple[str, str]], None] = GroupCommit(_arm_together)
aftercommit.register(_ARM_KIND, _arms.submit)

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
    throughput_mps: int  # what Meta takes from the number in any one second
    pace_mps: float = 0.0  # what it sends at now: its throughput, slowed for a while after a 130429 (ratelimit)
    items: list[Outgoing] = field(default_factory=list)
    paused: bool = False  # sends paused (credentials), the number deleted, or every send held (restrictions)
    templates_held: bool = False  # Meta restricted business-initiated messaging: template messages wait
    claimed_in: float = 0.0  # seconds the claim took (the dispatcher logs it per batch)


_NUMBER = text("""
SELECT n.id, n.organization_id, n.phone_number_id, n.access_token_encrypted, n.throughput_mps,
       n.sends_paused_at IS NOT NULL OR n.deleted_at IS NOT NULL OR n.sends_held_until > now() AS paused,
       coalesce(n.templates_held_until > now(), false) AS templates_held,
       o.suspended_at IS NOT NULL AS is_suspended, o.subscription_status::text AS subscription_status
FROM whatsapp_numbers n JOIN organizations o ON o.id = n.organization_id
WHERE n.id = :number_id
""")

# A message may go when every earlier pending message of its conversation goes before it: none of
# them is in flight, waiting for a later attempt, held by a restriction (shared.services.restrictions),
# or bulk behind this urgent one (the ORDER BY then
# puts each earlier one ahead of it in this same batch). Per conversation, where the first such
# obstacle sits comes from window functions over one pass of the number's pending rows. Not a join
# with a GROUP BY: on a table whose statistics are stale (a campaign queued a moment ago, before
# autoanalyze) the planner expects one row and loops the aggregate once per candidate, 1.5 s per
# claim with 3,000 queued; this shape has no plan that bad. FOR UPDATE cannot sit beside window
# functions, so the outer query locks the chosen rows by id, only the batch's worth (with every eligible
# row probed, PostgreSQL once took 78% of a core pacing two numbers at 80/s with 4,800 queued; 11% now).
# A row another transaction holds is skipped, and the batch is that much smaller.
_CANDIDATES = text("""
SELECT m.id FROM messages m
WHERE m.id IN (
  SELECT id FROM (
    SELECT id, status, next_attempt_at, sender_type, sequence,
           min(sequence) FILTER (WHERE status = 'sending' OR next_attempt_at > :now
                                 OR (:templates_held AND type = 'template')) OVER conversation AS blocked_from,
           min(sequence) FILTER (WHERE sender_type = 'campaign') OVER conversation AS first_bulk
    FROM messages
    WHERE number_id = :number_id AND status IN ('queued', 'sending') AND direction = 'outbound'
    WINDOW conversation AS (PARTITION BY conversation_id)
  ) pending
  WHERE status = 'queued' AND next_attempt_at <= :now
    AND (blocked_from IS NULL OR sequence < blocked_from)
    AND (sender_type = 'campaign' OR first_bulk IS NULL OR sequence < first_bulk)
  ORDER BY (sender_type = 'campaign'), sequence
  LIMIT :limit
)
  AND m.status = 'queued'
ORDER BY (m.sender_type = 'campaign'), m.sequence
LIMIT :limit
FOR UPDATE OF m SKIP LOCKED
""")


def claim_batch(session: Session, *, number_id: uuid.UUID | str, max_batch: int = 100,
                horizon_seconds: float = 0.25) -> Batch | None:
    """Claim the number's due messages (queued → sending), as many as its pace sends in `horizon_seconds`
    (at least 1, at most `max_batch`); None: the number is gone.

    The caller commits before any request leaves. Messages refused at send time (consent, window,
    trial) fail here, set-wise. A message taken for the first time gets its `messages.queued` timeline line here.
    """
    row = session.execute(_NUMBER, {"number_id": str(number_id)}).one_or_none()
    if row is None:
        return None
    batch = Batch(number_id=row.id, org_id=row.organization_id, phone_number_id=row.phone_number_id,
                  access_token_encrypted=row.access_token_encrypted, throughput_mps=row.throughput_mps,
                  pace_mps=max(1.0, row.throughput_mps * ratelimit.pace_factor(str(row.id))),
                  paused=row.paused, templates_held=row.templates_held)
    if batch.paused:
        return batch
    now = utcnow()
    limit = max(1, min(max_batch, int(batch.pace_mps * horizon_seconds)))
    ids = list(session.execute(_CANDIDATES, {"number_id": str(batch.number_id), "now": now, "limit": limit,
                                             "templates_held": batch.templates_held}).scalars())
    if not ids:
        return batch
    loaded = session.execute(
        select(Message, Conversation.window_expires_at, Conversation.unreachable_until, Contact)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.id.in_(ids))
        .execution_options(all_tenants=True, include_deleted=True)
    ).all()
    template_categories = _template_categories(session, [m.template_id for m, *_ in loaded if m.template_id])
    order = {message_id: i for i, message_id in enumerate(ids)}
    loaded.sort(key=lambda r: order[r[0].id])
    org_refusal = _org_refusal(row.is_suspended, row.subscription_status)
    going: list[Message] = []
    for message, window_expires_at, unreachable_until, contact in loaded:
        if message.attempts == 0:
            messages.timeline_queued(session, message)
        refusal = org_refusal or _refusal(message, window_expires_at, unreachable_until, contact,
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


def _refusal(message: Message, window_expires_at: dt.datetime | None, unreachable_until: dt.datetime | None,
             contact: Contact, template_category: str | None, now: dt.datetime) -> tuple[str, str] | None:
    """The request-time rules (messages._refusal), again at send time."""
    verdict = consent.eligibility(contact, consent.category_of(template_category if message.template_id else None),
                                  unreachable_until=unreachable_until, now=now)
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
    consent.note_undeliverable(session, conversation_id=message.conversation_id, code=message.error_code,
                               at=message.failed_at)
    campaign_feedback.note_failed(session, message)
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


def due_numbers(session: Session) -> list[tuple[str, str]]:
    """(number id, org id) of every number with a due queued message: the sweep re-arms their dispatchers
    (a restriction's hold that has expired included)."""
    rows = session.execute(text("""
        SELECT DISTINCT m.number_id, m.organization_id FROM messages m
        JOIN whatsapp_numbers n ON n.id = m.number_id
        WHERE m.status = 'queued' AND m.direction = 'outbound' AND m.next_attempt_at <= now()
          AND n.sends_paused_at IS NULL AND n.deleted_at IS NULL
          AND (n.sends_held_until IS NULL OR n.sends_held_until <= now())
          AND NOT (m.type = 'template' AND coalesce(n.templates_held_until > now(), false))""")).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def next_attempt_in(session: Session, *, number_id: uuid.UUID) -> float | None:
    """Seconds until the number's earliest queued message that is not due yet (a retry, a message behind a hold);
    None when there is none. What the dispatcher waits for when it can claim nothing now."""
    at = session.execute(text(
        "SELECT min(next_attempt_at) FROM messages WHERE number_id = :n AND status = 'queued' "
        "AND direction = 'outbound' AND next_attempt_at > :now"), {"n": str(number_id), "now": utcnow()}).scalar()
    return None if at is None else max(0.0, (at - utcnow()).total_seconds())


def was_woken(number_id: uuid.UUID | str) -> bool:
    """Whether a message was queued on the number while its dispatcher held the lease (take_lease_or_wake)."""
    return get_redis().lpop(wake_key(number_id)) is not None


# -- one message at a time (tests and tools) -----------------------------------------------------


def claim_send(session: Session, *, message_id: uuid.UUID) -> bool:
    """queued → sending for one message (the batch claim does this for many)."""
    return session.execute(
        update(Message).where(Message.id == message_id, Message.status == MessageStatus.queued)
        .values(status=MessageStatus.sending, attempts=Message.attempts + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount == 1
