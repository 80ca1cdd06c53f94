"""Sends pipeline: one outbound message to Meta, paced by its number's shared limiter.

The steps, each its own transaction: prepare (re-check consent, trial and the 24 h window at send
time), book a slot on the number's limiter, claim (queued → sending, committed before the request
leaves), call Graph, record. What Meta answers decides what happens next (reference §3):
transient errors go back to `queued` with backoff and jitter; 130429 holds the whole number;
131056 holds only that recipient; token and account errors pause the number; permanent errors
fail the message with Meta's code. A timeout after the request left makes the message `unknown`
(it may have been sent): a status webhook settles it, it is never sent again blindly.
"""

from __future__ import annotations

import random
import time
import uuid

import structlog

from shared import crypto, ratelimit
from shared.db import unit_of_work
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.services import conversations, media, messages
from shared.services.messages import NotDue, SendPlan
from shared.settings import get_settings
from shared.whatsapp.client import GraphClient
from shared.whatsapp.errors import ErrorAction, GraphAPIError, GraphTransportError

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 6
URGENT_MAX_WAIT = 2.0  # an agent's reply waits up to this long for a slot, booking ahead of bulk traffic
BULK_MAX_WAIT = 0.25  # bulk traffic only takes a slot that is (nearly) free now
PAIR_HOLD_BASE = 6.0
MAX_COUNTDOWN_SECONDS = 60.0


def _client(access_token_encrypted: str) -> GraphClient:
    settings = get_settings()
    return GraphClient(settings.graph_api_base, settings.whatsapp_api_version, crypto.decrypt(access_token_encrypted))


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(0.8, 1.2)


def _retry_later(task, message_id: str, org_id: str, seconds: float) -> None:
    """Short waits are a Celery countdown; longer ones are left to the message sweep, which publishes a
    message once its `next_attempt_at` has come (no far-future ETAs held by the broker, DESIGN §4.6)."""
    if seconds <= MAX_COUNTDOWN_SECONDS:
        task.apply_async(kwargs={"message_id": message_id, "org_id": org_id}, countdown=max(0.0, seconds))


@celery_app.task(name=names.SEND_MESSAGE, bind=True, max_retries=None)
def send_message(self, message_id: str, org_id: str) -> None:
    """Send one queued message.

    Trigger: POST /conversations/{id}/messages or /messages (after commit), keyword confirmations,
    the message sweep. Idempotency: the queued → sending claim; a second task finds it claimed and
    returns; a message left `sending` by a killed worker becomes `unknown`, never resent.
    Retry: by republishing with a countdown (backoff + jitter, pair-rate and throughput holds).
    Side effects: one Graph call; the message row; conversation and contact counters.
    """
    with unit_of_work() as session:
        plan = messages.prepare_send(session, message_id=message_id)
    if plan is None:
        return
    if isinstance(plan, NotDue):
        if plan.retry_in is not None:
            _retry_later(self, message_id, org_id, plan.retry_in)
        return

    pair_key = ratelimit.recipient_key(str(plan.number_id), plan.to)
    held = ratelimit.blocked_for(pair_key)
    if held > 0:
        with unit_of_work() as session:
            messages.requeue(session, message_id=plan.message_id, delay_seconds=held, code="131056",
                             reason="waiting for this recipient's pair rate")
        _retry_later(self, message_id, org_id, held)
        return
    slot = ratelimit.reserve(ratelimit.number_key(str(plan.number_id)), rate_per_second=plan.throughput_mps,
                             max_wait_seconds=URGENT_MAX_WAIT if plan.urgent else BULK_MAX_WAIT)
    if not slot.granted:
        _retry_later(self, message_id, org_id, _jittered(min(slot.wait_seconds, 5.0)))
        return

    with unit_of_work() as session:
        if not messages.claim_send(session, message_id=plan.message_id):
            return
    if slot.wait_seconds > 0:
        time.sleep(slot.wait_seconds)
    _deliver(self, plan, org_id)


def _uploaded(task, plan: SendPlan, org_id: str, client: GraphClient):
    """The content to send: a file uploaded to PyTake goes to Meta first and is sent by its media id."""
    content = plan.content
    if not (isinstance(content, dict) and "upload" in content):
        return content
    key = content["upload"]
    try:
        meta_id = client.upload_media(plan.phone_number_id, media.read_upload(key), media.mime_type_of(key),
                                      content.get("filename") or key.rsplit("/", 1)[-1])
    except GraphAPIError as exc:
        _on_graph_error(task, plan, org_id, exc)
        return None
    except GraphTransportError as exc:  # an upload that may have happened sends nothing: safe to try again
        delay = _jittered(min(300.0, 2.0 * 2 ** plan.attempts))
        with unit_of_work() as session:
            messages.requeue(session, message_id=plan.message_id, delay_seconds=delay, code="upload_failed",
                             reason=str(exc))
        _retry_later(task, str(plan.message_id), org_id, delay)
        return None
    with unit_of_work() as session:
        messages.record_media_id(session, message_id=plan.message_id, media_id=meta_id)
    return {**{k: v for k, v in content.items() if k != "upload"}, "id": meta_id}


def _deliver(task, plan: SendPlan, org_id: str) -> None:
    message_id = str(plan.message_id)
    client = _client(plan.access_token_encrypted)
    content = _uploaded(task, plan, org_id, client)
    if content is None:
        return
    try:
        result = client.send_message(
            plan.phone_number_id, plan.to, plan.type, content,
            context_message_id=plan.context_wamid, biz_opaque_callback_data=messages.callback_data(plan.message_id),
        )
    except GraphAPIError as exc:
        _on_graph_error(task, plan, org_id, exc)
        return
    except GraphTransportError as exc:
        with unit_of_work() as session:
            if exc.ambiguous:
                messages.mark_unknown(session, message_id=plan.message_id, reason=str(exc))
                return
            delay = _jittered(min(300.0, 2.0 * 2 ** plan.attempts))
            messages.requeue(session, message_id=plan.message_id, delay_seconds=delay, code="transport_error",
                             reason=str(exc))
        _retry_later(task, message_id, org_id, delay)
        return
    with unit_of_work() as session:
        messages.record_sent(session, message_id=plan.message_id, wamid=result.wamid)
    log.info("sends.sent", message_id=message_id, wamid=result.wamid)


def _on_graph_error(task, plan: SendPlan, org_id: str, exc: GraphAPIError) -> None:
    message_id = str(plan.message_id)
    classification = exc.classification
    code, reason = str(exc.code), exc.message
    attempt = plan.attempts + 1
    with unit_of_work() as session:
        if classification.action is ErrorAction.RETRY_AFTER and classification.scope.value == "number":
            hold = exc.retry_after or classification.retry_after or 1.0
            ratelimit.hold(ratelimit.number_key(str(plan.number_id)), seconds=hold)  # slows every sender
            delay = _jittered(hold)
        elif classification.action is ErrorAction.PAIR_LIMITED:
            hold = classification.delay_for(attempt) or PAIR_HOLD_BASE
            ratelimit.hold(ratelimit.recipient_key(str(plan.number_id), plan.to), seconds=hold)
            delay = hold
        elif classification.retryable and attempt < (classification.max_attempts or MAX_ATTEMPTS):
            delay = _jittered(classification.delay_for(attempt) or 2.0)
        elif classification.action in (ErrorAction.INVALID_TOKEN, ErrorAction.PAUSE_SENDER):
            messages.pause_number(session, number_id=plan.number_id, reason=f"Meta {code}: {reason}")
            messages.requeue(session, message_id=plan.message_id, delay_seconds=0, code=code, reason=reason)
            return
        else:
            messages.fail_message(session, message_id=plan.message_id, code=code, reason=reason)
            log.info("sends.failed", message_id=message_id, code=code)
            return
        messages.requeue(session, message_id=plan.message_id, delay_seconds=delay, code=code, reason=reason)
    _retry_later(task, message_id, org_id, delay)


@celery_app.task(name=names.MARK_READ, bind=True, max_retries=5)
def mark_read(self, conversation_id: str, message_id: str, org_id: str) -> None:
    """Send Meta the read receipt for a conversation's last inbound message.

    Trigger: POST /conversations/{id}/read. Idempotency: a read receipt repeated is harmless to
    Meta. Retry: transient Graph errors, 5 times with backoff. Side effects: one Graph call.
    """
    with unit_of_work() as session:
        message = messages.get_message(session, org_id=uuid.UUID(org_id), message_id=message_id)
        conversation = conversations.get_conversation(session, org_id=message.organization_id,
                                                      conversation_id=conversation_id)
        number, _ = conversations.number_and_contact(session, conversation)
        token, phone_number_id, wamid = number.access_token_encrypted, number.phone_number_id, message.wamid
    try:
        _client(token).mark_as_read(phone_number_id, wamid)
    except (GraphAPIError, GraphTransportError) as exc:
        if isinstance(exc, GraphAPIError) and not exc.retryable:
            log.warning("sends.read_receipt_refused", message_id=message_id, code=exc.code)
            return
        raise self.retry(exc=exc, countdown=_jittered(2.0 * 2 ** self.request.retries))
