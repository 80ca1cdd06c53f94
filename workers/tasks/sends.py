"""Sends pipeline: one dispatcher per number sends its due messages in batches, at the number's pace.

The dispatcher holds the number's Redis lease (shared/services/sending.py) and loops: claim a
batch (committed queued → sending before any request leaves), book the batch's limiter slots in
one Redis call, send each message at its slot's absolute time over the process's keep-alive
session from a small thread pool (Graph calls are I/O), a conversation's messages one after the
other in their queued order, then record the whole batch in one transaction. The next batch is
claimed and its slots booked while one is on the wire, so neither a claim nor a record leaves a gap
in the number's pace (two batches claimed at most: what a SIGKILL leaves to the takeover). What Meta answers is
decided by shared/services/send_policy.py: transient errors go back to `queued` with backoff and
jitter (holding later messages of that conversation only); 130429 holds the whole number;
131056 holds only that recipient; token and account errors pause the number; permanent errors
fail the message with Meta's code. A timeout after the request left makes the message `unknown`:
a status webhook settles it, it is never sent again blindly.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import structlog

from shared import crypto, ratelimit
from shared.backoff import backoff_seconds
from shared.db import unit_of_work
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.queueing.publish import publish_now
from shared.redis_client import get_redis
from shared.services import conversations, media, messages, send_outcomes, send_policy, sending
from shared.services.send_policy import Decision, Verdict
from shared.settings import get_settings
from shared.whatsapp.client import GraphClient
from shared.whatsapp.errors import GraphError

log = structlog.get_logger(__name__)

SEND_THREADS = 16  # requests in flight per dispatcher: enough to keep 1,000/s going at a few ms per request
MAX_BATCH = 200
BATCH_HORIZON_SECONDS = 0.25  # a batch holds about this much of the number's pace (what a SIGKILL leaves in doubt)
MAX_RUN_SECONDS = 20.0  # then the dispatcher hands its lease to a fresh task, so other numbers get the pool too
IDLE_WAIT_SECONDS = 2.0  # a retry due this soon is waited for here (a message queued meanwhile ends the wait);
# later ones re-arm the dispatcher by countdown
MAX_COUNTDOWN_SECONDS = 60.0  # beyond that the sweep re-arms (no far-future ETAs, DESIGN §4.6)
RENEW_EVERY_SECONDS = 2.0
THROUGHPUT_EXCEEDED = "130429"  # Meta's per-number throughput: the number's pace slows, then recovers (ratelimit)
SPAN_GUARD_SECONDS = 0.002  # a request leaves at least 1 s plus this after the one `throughput` before came back

_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor, _executor_pid
    if _executor is None or _executor_pid != os.getpid():
        _executor, _executor_pid = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="send"), os.getpid()
    return _executor


def _client(access_token_encrypted: str) -> GraphClient:
    settings = get_settings()
    return GraphClient(settings.graph_api_base, settings.whatsapp_api_version, crypto.decrypt(access_token_encrypted))


class _Pacer:
    """Each request leaves at its booked slot's absolute time, and never sooner than one second (plus a
    guard) after the request `throughput` places before it *came back*: that one certainly arrived at
    Meta before its answer did, so no one-second span Meta counts ever holds more than `throughput`,
    however late a thread got the core (departure times alone let such jitter draw 130429)."""

    def __init__(self, throughput: int) -> None:
        self.throughput = max(1, throughput)
        self.window: collections.deque[list[float | None]] = collections.deque(maxlen=self.throughput)
        self.changed = threading.Condition()

    def wait_until(self, at: float) -> list[float | None]:
        """Block until this request may leave; the returned ticket goes back to `done` when it came back."""
        with self.changed:
            while True:
                now = time.monotonic()
                floor = 0.0
                if len(self.window) == self.throughput:
                    came_back = self.window[0][0]
                    if came_back is None:  # still in flight: its answer sets the floor
                        self.changed.wait(timeout=0.05)
                        continue
                    floor = came_back + 1.0 + SPAN_GUARD_SECONDS
                ready = max(at, floor)
                if now >= ready:
                    ticket: list[float | None] = [None]
                    self.window.append(ticket)
                    return ticket
                self.changed.wait(timeout=ready - now)

    def done(self, ticket: list[float | None]) -> None:
        with self.changed:
            ticket[0] = time.monotonic()
            self.changed.notify_all()


_pacers: dict[str, _Pacer] = {}
WINDOW_PREFIX = "pytake:sends:pacer:"


def _pacer(number_id: uuid.UUID, throughput: int) -> _Pacer:
    key = str(number_id)
    pacer = _pacers.get(key)
    if pacer is None or pacer.throughput != max(1, throughput):
        pacer = _pacers[key] = _Pacer(throughput)
    return pacer


def _hand_over_window(number_id: str) -> None:
    """When its requests came back, for the process that takes the number next: a fresh pacer knows nothing of
    the last second, and the other process's late requests plus its own on-time ones drew 130429."""
    pacer = _pacers.get(number_id)
    if pacer is None:
        return
    offset = time.time() - time.monotonic()
    with pacer.changed:
        came_back = [ticket[0] + offset for ticket in pacer.window if ticket[0] is not None]
    get_redis().set(f"{WINDOW_PREFIX}{number_id}", json.dumps({"throughput": pacer.throughput, "came_back": came_back}),
                    ex=5)


def _take_over_window(number_id: str) -> None:
    raw = get_redis().get(f"{WINDOW_PREFIX}{number_id}")
    if raw is None:
        return
    saved = json.loads(raw)
    pacer = _pacer(uuid.UUID(number_id), saved["throughput"])
    offset = time.time() - time.monotonic()
    with pacer.changed:
        pacer.window.clear()
        pacer.window.extend([[came_back - offset] for came_back in saved["came_back"][-pacer.throughput:]])


@celery_app.task(name=names.DISPATCH_NUMBER, bind=True, max_retries=None)
def dispatch_number(self, number_id: str, org_id: str, lease: str | None = None) -> None:
    """Send a number's due messages, batch after batch, while it holds the number's dispatcher lease.

    Trigger: a message queued on the number (after commit, when no dispatcher holds the lease), the
    message sweep (re-arms numbers with due messages), itself (hand-over after MAX_RUN_SECONDS, or a
    countdown to the next retry). Idempotency: the Redis lease (one dispatcher per number; a second
    task whose lease is not held returns), the committed queued → sending claim, and the per-message
    "not sent yet" mark taken atomically before each request (a redelivered or overlapping dispatcher
    never sends a message twice). Retry: none of the task itself (acks_late: a killed worker's task is
    redelivered and takes its lease back); messages are retried by the send policy. Side effects:
    Graph calls; message rows; conversation and contact counters; timeline lines after commit.
    """
    token = lease or uuid.uuid4().hex
    if not (sending.renew_lease(number_id, token) if lease else sending.take_lease(number_id, token)):
        return  # another dispatcher has the number
    number_uuid = uuid.UUID(number_id)
    with unit_of_work() as session:
        send_outcomes.recover_number(session, number_id=number_uuid)
    _take_over_window(number_id)
    started = time.monotonic()
    in_flight: _InFlight | None = None  # the batch on the wire while the next one is claimed
    try:
        while True:
            if time.monotonic() - started > MAX_RUN_SECONDS:
                _finish(in_flight, token)
                in_flight = None
                publish_now(names.DISPATCH_NUMBER, number_id=number_id, org_id=org_id, lease=token)
                return
            if not sending.renew_lease(number_id, token):
                log.warning("sends.lease_lost", number_id=number_id)
                return
            batch = _claim(number_uuid)
            if batch is None or batch.paused:
                _finish(in_flight, token)
                in_flight = None
                return sending.release_lease(number_id, token)
            if batch.items:
                # Its slots follow the in-flight batch's on the limiter: the wire never waits for a claim or a record.
                previous, in_flight = in_flight, _start(batch, after=in_flight)
                _finish(previous, token)
                continue
            if in_flight is not None:  # nothing claimable while its conversations are in flight: record, look again
                _finish(in_flight, token)
                in_flight = None
                continue
            if batch.templates_held:  # what is left waits for the restriction: the sweep re-arms the number after it
                return sending.release_lease(number_id, token)
            # Nothing claimable: what is due (if anything) waits behind a later attempt in its conversation, so the
            # next thing to try comes with the earliest such attempt (not "due now": that re-claimed in a loop).
            with unit_of_work() as session:
                wake_in = sending.next_attempt_in(session, number_id=number_uuid)
            if wake_in is not None and wake_in <= IDLE_WAIT_SECONDS:
                sending.wait_for_work(number_id, wake_in + 0.01)  # a message queued meanwhile ends the wait
                continue
            sending.release_lease(number_id, token)
            # A message committed while we held the lease woke us instead of publishing: take the lease back for it.
            if sending.was_woken(number_id) and sending.take_lease(number_id, token):
                continue
            if wake_in is not None and wake_in <= MAX_COUNTDOWN_SECONDS:
                self.apply_async(kwargs={"number_id": number_id, "org_id": org_id}, countdown=wake_in)
            return
    except Exception:
        try:
            _finish(in_flight, token)  # what already left is still recorded; every request has returned
        finally:
            in_flight = None
            # Free the number now (a database blip, say): the next message or sweep starts a dispatcher at once,
            # instead of after the lease lapses. Its recovery settles what this one left in flight.
            with contextlib.suppress(Exception):
                sending.release_lease(number_id, token)
        raise
    finally:
        _finish(in_flight, token)  # an exception above: what already left is still recorded


def _claim(number_id: uuid.UUID) -> sending.Batch | None:
    started = time.monotonic()
    with unit_of_work() as session:
        batch = sending.claim_batch(session, number_id=number_id, max_batch=MAX_BATCH,
                                    horizon_seconds=BATCH_HORIZON_SECONDS)
    if batch is not None and batch.items:
        batch.claimed_in = time.monotonic() - started
    return batch


class _InFlight:
    """A claimed batch being sent by the thread pool; `_finish` waits for it and records it."""

    def __init__(self, batch: sending.Batch, after: _InFlight | None) -> None:
        self.batch = batch
        self.outcomes = send_outcomes.Outcomes()
        self.lock = threading.Lock()
        self.stop = threading.Event()  # the number must stop: later messages go back to queued untouched
        self.earlier_stop = after.stop if after is not None else None
        self.futures: list[Future] = []
        self.started = time.monotonic()

    def stopped(self) -> bool:
        return self.stop.is_set() or (self.earlier_stop is not None and self.earlier_stop.is_set())


def _start(batch: sending.Batch, *, after: _InFlight | None) -> _InFlight:
    flight = _InFlight(batch, after)
    client = _client(batch.access_token_encrypted)
    pacer = _pacer(batch.number_id, batch.throughput_mps)
    slots = ratelimit.reserve_many(ratelimit.number_key(str(batch.number_id)), count=len(batch.items),
                                   rate_per_second=batch.pace_mps or batch.throughput_mps)
    origin = time.monotonic() + slots.first_in
    # Pair-rate holds of the whole batch in one round trip; a 131056 during the batch holds that
    # conversation's later messages (and the next batch sees the hold).
    held_for = ratelimit.blocked_for_many(
        list({ratelimit.recipient_key(str(batch.number_id), item.to) for item in batch.items}))
    groups: dict[uuid.UUID, list[tuple[int, sending.Outgoing]]] = {}
    for index, item in enumerate(batch.items):
        groups.setdefault(item.conversation_id, []).append((index, item))

    def run(group: list[tuple[int, sending.Outgoing]]) -> None:
        held = False  # an earlier message of this conversation did not go: the later ones wait for it
        for index, item in group:
            if held or flight.stopped():
                with flight.lock:
                    flight.outcomes.not_sent.append(item.message_id)
                continue
            decision = _send_one(batch, client, pacer, item, origin + index * slots.interval, flight.outcomes,
                                 flight.lock, held_for)
            if decision is None:
                continue
            with flight.lock:
                flight.outcomes.decided.append((item, decision))
            if decision.verdict is not Verdict.UNKNOWN and decision.verdict is not Verdict.FAIL:
                held = True
            if decision.stops_number:
                flight.stop.set()

    flight.futures = [_pool().submit(run, group) for group in groups.values()]
    return flight


def _finish(flight: _InFlight | None, token: str) -> None:
    """Wait for the batch's requests (renewing the lease), then record its outcome in one transaction."""
    if flight is None:
        return
    batch, outcomes = flight.batch, flight.outcomes
    pending = set(flight.futures)
    while pending:
        _, pending = wait(pending, timeout=RENEW_EVERY_SECONDS)
        if pending:
            sending.renew_lease(batch.number_id, token)
    errors = [future.exception() for future in flight.futures if future.exception() is not None]
    flight.futures = []
    with contextlib.suppress(Exception):  # before any hand-over or release: whoever sends next knows the last second
        _hand_over_window(str(batch.number_id))
    # Claimed but put back untouched: take their "not sent yet" marks so nothing else settles them twice.
    kept = sending.untake_all(batch.number_id, [str(i) for i in outcomes.not_sent])
    outcomes.not_sent = [uuid.UUID(i) for i in kept]
    waited, recording = time.monotonic() - flight.started, time.monotonic()
    for attempt in range(3):
        try:
            with unit_of_work() as session:
                send_outcomes.record_batch(session, batch=batch, outcomes=outcomes)
            break
        except Exception:  # a deadlock with the inbound pipeline, say: the same outcome again is harmless
            log.exception("sends.record_failed", number_id=str(batch.number_id), attempt=attempt)
            if attempt == 2:
                raise
            time.sleep(backoff_seconds(attempt, base=0.05, cap=0.2))
    log.info("sends.batch", number_id=str(batch.number_id), messages=len(batch.items), sent=len(outcomes.sent),
             claim_ms=round(1000 * batch.claimed_in, 1), on_wire_ms=round(1000 * waited, 1),
             record_ms=round(1000 * (time.monotonic() - recording), 1))
    if errors:
        raise errors[0]


def _send_one(batch: sending.Batch, client: GraphClient, pacer: _Pacer, item: sending.Outgoing, at: float,
              outcomes: send_outcomes.Outcomes, lock: threading.Lock, held_for: dict[str, float]) -> Decision | None:
    """Send one message at its slot; None when it was accepted (or someone else settled it)."""
    hold = held_for.get(ratelimit.recipient_key(str(batch.number_id), item.to), 0.0)
    if hold > 0:
        return Decision(Verdict.HOLD_RECIPIENT, "131056", "waiting for this recipient's pair rate",
                        delay_seconds=hold, hold_seconds=hold)
    content = item.content
    if isinstance(content, dict) and "upload" in content:
        try:
            content = _uploaded(batch, client, item, outcomes, lock)
        except GraphError as exc:
            return _apply(batch, item, send_policy.upload_failed(exc, attempt=item.attempts))
    ticket = pacer.wait_until(at)
    try:
        if not sending.take_unsent(batch.number_id, item.message_id):
            return None  # settled by a takeover while we waited: it is not ours to send any more
        result = client.send_message(batch.phone_number_id, item.to, item.type, content,
                                     context_message_id=item.context_wamid,
                                     biz_opaque_callback_data=messages.callback_data(item.message_id))
    except GraphError as exc:
        return _apply(batch, item, send_policy.decide(exc, attempt=item.attempts))
    finally:
        pacer.done(ticket)
    with lock:
        outcomes.sent.append((item.message_id, result.wamid))
    return None


def _apply(batch: sending.Batch, item: sending.Outgoing, decision: Decision) -> Decision:
    """The limiter side of a decision acts at once, so every process slows down together."""
    if decision.verdict is Verdict.HOLD_NUMBER:
        ratelimit.hold(ratelimit.number_key(str(batch.number_id)), seconds=decision.hold_seconds)
        if decision.code == THROUGHPUT_EXCEEDED:
            ratelimit.slow_down(str(batch.number_id))
    elif decision.verdict is Verdict.HOLD_RECIPIENT:
        ratelimit.hold(ratelimit.recipient_key(str(batch.number_id), item.to), seconds=decision.hold_seconds)
    return decision


def _uploaded(batch: sending.Batch, client: GraphClient, item: sending.Outgoing, outcomes: send_outcomes.Outcomes,
              lock: threading.Lock) -> Any:
    """A file uploaded to PyTake goes to Meta first and is sent by its media id."""
    content = item.content
    key = content["upload"]
    meta_id = client.upload_media(batch.phone_number_id, media.read_upload(key), media.mime_type_of(key),
                                  content.get("filename") or key.rsplit("/", 1)[-1])
    with lock:
        outcomes.media_ids.append((item.message_id, meta_id))
    return {**{k: v for k, v in content.items() if k != "upload"}, "id": meta_id}


@celery_app.task(name=names.SEND_MESSAGE, bind=True, max_retries=None)
def send_message(self, message_id: str, org_id: str) -> None:
    """The per-message task of before, kept for messages still in a broker: it re-arms the message's number.

    Trigger: a publish made before the dispatcher existed. Idempotency: arming is a lease; the
    dispatcher claims each message once. Retry: none. Side effects: maybe one dispatch_number publish.
    """
    with unit_of_work() as session:
        message = messages.get_message(session, org_id=uuid.UUID(org_id), message_id=message_id)
        number_id = message.number_id
    sending.arm([(str(number_id), org_id)])


@celery_app.task(name=names.MARK_READ, bind=True, max_retries=5)
def mark_read(self, conversation_id: str, message_id: str, org_id: str) -> None:
    """Send Meta the read receipt for a conversation's last inbound message.

    Trigger: POST /conversations/{id}/read. Idempotency: a read receipt repeated is harmless to
    Meta. Retry: transient Graph errors, 5 times with backoff. Side effects: one Graph call.
    """
    from shared.whatsapp.errors import GraphAPIError, GraphTransportError

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
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries))
