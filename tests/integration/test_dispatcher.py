"""The per-number dispatcher on real workers, against the Cloud API sandbox.

A conversation's messages leave in their queued order even when one of them needs a second
attempt; another conversation on the same number does not wait for that retry; a dispatcher whose
worker is SIGKILLed mid-burst is taken over by another worker, and every message leaves exactly once.

What the sandbox received is read from its request log (`/_sandbox/requests`, every Graph call with
its time, body and error code) and its accepted-messages log (`/_sandbox/messages`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import select

from shared.db import unit_of_work
from shared.models import Message, MessageStatus, WhatsAppNumber
from shared.models.base import utcnow
from shared.queueing.celery_app import celery_app
from shared.queueing.names import SENDS
from shared.redis_client import get_redis
from shared.services import messages, sending
from tests.integration.conftest import Process, process_env, wait_for
from tests.integration.test_conversations_end_to_end import (  # noqa: F401 (fixtures)
    NUMBER,
    TERMINAL,
    _pool_children,
    customer,
    inbox,
)

pytestmark = pytest.mark.integration

SENT_OR_LATER = {MessageStatus.sent, MessageStatus.delivered, MessageStatus.read}
TRANSIENT = 131000  # what the sandbox's fail_texts_once answers: Meta's "unknown error", retried with backoff


@dataclass(frozen=True)
class GraphSend:
    at: float  # when the sandbox received the request (its clock is this machine's)
    text: str | None
    error_code: int | None
    callback: str | None


def graph_sends(inbox, wa_id: str) -> list[GraphSend]:
    """Every send request the sandbox received for `wa_id`, refused ones included, in arrival order."""
    response = requests.get(f"{inbox.sandbox}/_sandbox/requests", params={"kind": "messages", "method": "POST"},
                            timeout=5)
    response.raise_for_status()
    sends = []
    for entry in response.json()["data"]:
        body = entry.get("body") or {}
        if "".join(ch for ch in str(body.get("to", "")) if ch.isdigit()) != wa_id:
            continue
        sends.append(GraphSend(entry["at"], (body.get("text") or {}).get("body"), entry.get("error_code"),
                               body.get("biz_opaque_callback_data")))
    return sorted(sends, key=lambda s: s.at)


def fail_texts_once(inbox, *texts: str) -> None:
    requests.patch(f"{inbox.sandbox}/_sandbox/faults", json={"fail_texts_once": list(texts)},
                   timeout=5).raise_for_status()


def conversation_with(inbox, wa_id: str):
    inbox.customer_says(wa_id, "hello")
    return wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="the conversation")


def reply(inbox, conversation_id, text: str) -> str:
    response = inbox.api("POST", f"/conversations/{conversation_id}/messages", inbox.admin,
                         json={"type": "text", "text": {"body": text}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def rows_when(inbox, ids, statuses, *, timeout: float, what: str) -> list[Message]:
    def reached():
        rows = [inbox.message(i) for i in ids]
        return all(row.status in statuses for row in rows) and rows

    return wait_for(reached, timeout=timeout, interval=0.2, what=what)


@contextlib.contextmanager
def sends_paused(inbox):
    """The number's sends wait (as after a refused token); new credentials resume them and the sweep sends
    what waited, so everything queued meanwhile is claimed together."""
    with unit_of_work() as session:
        session.get(WhatsAppNumber, inbox.number_id).sends_paused_at = utcnow()
    yield
    resumed = inbox.api("PATCH", f"/numbers/{inbox.number_id}", inbox.admin,
                        json={"access_token": NUMBER["access_token"]})
    assert resumed.status_code == 200 and resumed.json()["sends_paused_at"] is None, resumed.text


# 1. -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("queued", ["before_the_first_send", "one_after_the_other"])
def test_a_transient_failure_in_the_middle_of_five_replies_keeps_them_in_order(inbox, queued):
    wa_id = customer()
    conversation = conversation_with(inbox, wa_id)
    tag = uuid.uuid4().hex[:8]
    texts = [f"reply {n} of 5 ({tag})" for n in range(1, 6)]
    fail_texts_once(inbox, texts[2])  # the third fails once, as a 131000 from Meta would

    # before_the_first_send: all five in the dispatcher's first batch (the third's retry holds the 4th
    # and 5th inside that batch); one_after_the_other: as an agent types them, batch after batch.
    with sends_paused(inbox) if queued == "before_the_first_send" else contextlib.nullcontext():
        ids = [reply(inbox, conversation.id, text) for text in texts]

    rows = rows_when(inbox, ids, SENT_OR_LATER, timeout=45, what="all five replies to be sent")
    assert [m["request"]["text"]["body"] for m in inbox.sent_to(wa_id) if m["type"] == "text"] == texts
    sends = graph_sends(inbox, wa_id)
    # The fault fired, and nothing after the third was even tried before the third went.
    assert [(s.text, s.error_code) for s in sends] == [
        (texts[0], None), (texts[1], None), (texts[2], TRANSIENT), (texts[2], None), (texts[3], None),
        (texts[4], None)]
    assert sends[3].at - sends[2].at >= 1.5  # the retry waited its backoff (2 s ± 20 %)
    assert [row.attempts for row in rows] == [1, 1, 2, 1, 1]
    assert all(row.wamid for row in rows)


# 2. -------------------------------------------------------------------------------------------


def test_two_conversations_on_one_number_do_not_wait_on_each_others_retries(inbox):
    wa_a, wa_b = customer(), customer()
    conversation_a, conversation_b = conversation_with(inbox, wa_a), conversation_with(inbox, wa_b)
    tag = uuid.uuid4().hex[:8]
    texts_a = [f"A{n} ({tag})" for n in range(1, 4)]
    texts_b = [f"B{n} ({tag})" for n in range(1, 3)]
    fail_texts_once(inbox, texts_a[0])
    with sends_paused(inbox):  # A's three messages are queued when the dispatcher first looks
        ids_a = [reply(inbox, conversation_a.id, text) for text in texts_a]

    first_try = wait_for(lambda: [s for s in graph_sends(inbox, wa_a) if s.error_code == TRANSIENT], timeout=30,
                         interval=0.05, what="A's first message to fail")[0]
    queued_b_at = time.time()  # A1 now waits for its retry, A2 and A3 behind it
    ids_b = [reply(inbox, conversation_b.id, text) for text in texts_b]

    rows_when(inbox, ids_a + ids_b, SENT_OR_LATER, timeout=45, what="every message to be sent")
    sends_a, sends_b = graph_sends(inbox, wa_a), graph_sends(inbox, wa_b)
    assert [(s.text, s.error_code) for s in sends_a] == [
        (texts_a[0], TRANSIENT), (texts_a[0], None), (texts_a[1], None), (texts_a[2], None)]  # A kept its order
    assert [(s.text, s.error_code) for s in sends_b] == [(texts_b[0], None), (texts_b[1], None)]
    a_retry_at = sends_a[1].at
    assert a_retry_at - first_try.at >= 1.5  # A's retry waited its backoff...
    assert all(s.at < a_retry_at for s in sends_b)  # ...and B did not wait for it
    assert sends_b[-1].at - queued_b_at < 1.0  # B went out at once
    assert [m["request"]["text"]["body"] for m in inbox.sent_to(wa_a)] == texts_a


def test_messages_behind_a_distant_retry_leave_the_dispatcher_idle_until_it_is_due(inbox, worker):
    """A conversation whose first message waits 8 s for its retry (beyond the dispatcher's 2 s idle wait): the
    messages behind it are due but cannot go. The dispatcher stops and comes back for the retry, instead of
    re-claiming every few milliseconds until its run time is up (what it did: 20 s of a busy pool child)."""
    wa_id = customer()
    conversation = conversation_with(inbox, wa_id)
    tag = uuid.uuid4().hex[:8]
    texts = [f"behind a retry {n} ({tag})" for n in range(1, 4)]
    with sends_paused(inbox):
        ids = [reply(inbox, conversation.id, text) for text in texts]
        with unit_of_work() as session:  # the first one failed a moment ago and waits for its next attempt
            session.get(Message, uuid.UUID(ids[0])).next_attempt_at = utcnow() + dt.timedelta(seconds=8)
    log_mark = len(worker.log())

    def dispatchers_finished() -> list[float]:
        return [float(seconds) for seconds in re.findall(
            r"sends\.dispatch_number\[[^\]]+\] succeeded in ([0-9.]+)s", worker.log()[log_mark:])]

    finished = wait_for(dispatchers_finished, timeout=6, interval=0.2, what="the dispatcher to stop and wait")
    assert all(seconds < 3 for seconds in finished), finished
    assert graph_sends(inbox, wa_id) == []  # nothing jumped the queue
    rows_when(inbox, ids, SENT_OR_LATER, timeout=30, what="all three to go once the retry is due")
    assert [m["request"]["text"]["body"] for m in inbox.sent_to(wa_id)] == texts


# 3. -------------------------------------------------------------------------------------------


def _node(name: str) -> str:
    """The full node name (name@host) of a live worker, from its ping answer."""
    replies = celery_app.control.ping(timeout=2)
    nodes = [node for answer in replies for node in answer if node.startswith(f"{name}@")]
    assert nodes, f"worker {name} does not answer pings: {replies}"
    return nodes[0]


def _consume_sends(node: str, on: bool) -> None:
    control = celery_app.control.add_consumer if on else celery_app.control.cancel_consumer
    answer = control(SENDS, destination=[node], reply=True, timeout=5)
    assert answer, f"{node} did not answer {'add' if on else 'cancel'}_consumer"


@pytest.fixture
def sends_on_dedicated_workers(worker):
    """The suite's merged worker stops consuming `sends` for this test: only the workers it starts dispatch."""
    node = _node("itest")
    _consume_sends(node, False)
    try:
        yield
    finally:
        _consume_sends(node, True)


def _sends_worker(broker, sandbox, log_dir, name: str) -> Process:
    process = Process(name, [
        sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", SENDS, "-n", f"{name}@%h",
        "--concurrency", "1", "--pool", "prefork", "--prefetch-multiplier", "1", "--without-gossip",
        "--without-mingle", "--loglevel", "INFO"], process_env(broker, WHATSAPP_API_BASE=sandbox), log_dir)
    try:
        wait_for(lambda: " ready." in process.log() or process.popen.poll() is not None, timeout=60, interval=0.2,
                 what=f"the {name} worker to start")
    except AssertionError:
        process.stop()
        raise
    assert process.popen.poll() is None, process.log()[-3000:]
    return process


def _sandbox_latency(inbox, milliseconds: int) -> None:
    requests.patch(f"{inbox.sandbox}/_sandbox/faults", json={"latency_ms": milliseconds}, timeout=5).raise_for_status()


@pytest.mark.parametrize("death", ["pool_child", "whole_worker"])
def test_a_dispatcher_killed_mid_burst_is_taken_over_by_another_worker_and_sends_each_message_once(
        inbox, broker, sandbox, sends_on_dedicated_workers, tmp_path, death):
    """pool_child: the child running the dispatcher is SIGKILLed, its worker lives on but takes no more sends
    (its lost task is redelivered, with its lease); whole_worker: the worker and its child are SIGKILLed (the
    task is not redelivered: the lease lapses, the sweep settles and re-arms the number).

    The kill lands while a batch is half gone: some of its requests are at Meta (slow answers), the rest still
    wait for their slots. Those that waited must go exactly once from the new worker; those that left must not
    be sent again (`unknown`, then settled by their status webhook)."""
    redis = get_redis()
    lease, unsent = sending.lease_key(inbox.number_id), sending.unsent_key(inbox.number_id)
    first = _sends_worker(broker, sandbox, tmp_path, "sends-first")
    second = None
    try:
        # 12 a second: batches of 3, slots 85 ms apart; Meta answers in 0.4 s, so a batch is in flight for a while.
        slow = inbox.api("PATCH", f"/numbers/{inbox.number_id}", inbox.admin, json={"throughput_mps": 12})
        assert slow.status_code == 200, slow.text
        # Meta's pair rate (one message per 6 s per customer, after a burst) is not what this test is about: a
        # takeover a few seconds long would otherwise get later messages refused with 131056 and retried.
        inbox.sandbox_number(pair_rate_interval_seconds=0.05)
        wa_ids = [customer() for _ in range(6)]
        conversations = [conversation_with(inbox, wa_id) for wa_id in wa_ids]
        _sandbox_latency(inbox, 400)
        ids = [reply(inbox, conversation.id, f"burst {n}") for n in range(5) for conversation in conversations]

        def statuses() -> dict[str, MessageStatus]:
            with unit_of_work() as session:
                return {str(i): s for i, s in session.execute(
                    select(Message.id, Message.status).where(Message.id.in_([uuid.UUID(i) for i in ids])))}

        wait_for(lambda: sum(s in SENT_OR_LATER for s in statuses().values()) >= 6, timeout=30, interval=0.05,
                 what="the burst to be under way")
        holder = redis.get(lease)
        assert holder is not None, "no dispatcher holds the number's lease mid-burst"
        if death == "pool_child":
            _consume_sends(_node("sends-first"), False)

        def half_gone():  # some of the batch left (out of the "not sent yet" set), some still wait
            waiting = {m.decode() for m in redis.smembers(unsent)}
            in_flight = {i for i, s in statuses().items() if s == MessageStatus.sending} - waiting
            return waiting and in_flight

        wait_for(half_gone, timeout=30, interval=0.005, what="a batch half gone")
        [child] = _pool_children(first.popen.pid)
        if death == "whole_worker":
            os.kill(first.popen.pid, signal.SIGSTOP)  # it must not see its child die and hand the task back
        os.kill(child, signal.SIGKILL)
        if death == "whole_worker":
            os.kill(first.popen.pid, signal.SIGKILL)
            first.popen.wait(timeout=10)
        # Frozen now (until the new worker settles them), but for status webhooks of the requests that left.
        never_left = {m.decode() for m in redis.smembers(unsent)}
        at_kill = statuses()
        in_flight = {i for i, s in at_kill.items() if s == MessageStatus.sending} - never_left
        assert never_left and in_flight, (never_left, at_kill)  # the kill hit a batch half gone
        sent_before = {i for i, s in at_kill.items() if s in SENT_OR_LATER}

        second = _sends_worker(broker, sandbox, tmp_path, "sends-second")
        tokens = set()

        def requested() -> list[str]:
            return [s.callback for wa_id in wa_ids for s in graph_sends(inbox, wa_id)]

        def settled():
            if (token := redis.get(lease)) is not None:
                tokens.add(token)
            rows = {str(row.id): row for row in (inbox.message(i) for i in ids)}
            if not all(row.status in TERMINAL for row in rows.values()):
                return None
            at_meta = set(requested())
            # A message that left but was not recorded stays `unknown` until its status webhook settles it.
            return not any(row.status == MessageStatus.unknown and messages.callback_data(i) in at_meta
                           for i, row in rows.items()) and rows

        rows = wait_for(settled, timeout=90, interval=0.2, what="every message to settle")
        sends = [s for wa_id in wa_ids for s in graph_sends(inbox, wa_id)]
        callbacks = [s.callback for s in sends]
        twice = [(s.callback, s.error_code, round(s.at - sends[0].at, 3)) for s in sends
                 if callbacks.count(s.callback) > 1]
        assert not twice, twice  # no message requested twice (none refused either)
        at_meta = {str(messages.message_id_from_callback(c)) for c in callbacks}
        assert {row.status for row in rows.values()} <= SENT_OR_LATER | {MessageStatus.unknown}  # none failed
        assert {i for i, row in rows.items() if row.status in SENT_OR_LATER} == at_meta  # sent here = at Meta
        assert never_left <= at_meta  # what never left went, once, from the new worker
        lost = set(ids) - at_meta  # only a request killed between its mark and the wire may be lost
        assert len(lost) <= 1 and all(rows[i].status == MessageStatus.unknown for i in lost), lost
        # What had left was not sent again, and its status webhook settled it; the one the kill may have caught
        # between its mark and the wire is `unknown` (it may have left) and never resent, as asserted above.
        assert in_flight - lost <= at_meta
        assert at_meta - sent_before - in_flight, "nothing was sent after the kill"
        assert re.search(r"Task sends\.dispatch_number\[[^\]]+\] succeeded", second.log())  # the new worker sent them
        if death == "whole_worker":
            assert tokens - {holder}, "the lease was never re-taken by a new dispatcher"
        wait_for(lambda: redis.get(lease) is None, timeout=10, what="the new dispatcher to release the lease")
    finally:
        _sandbox_latency(inbox, 0)
        for process in (second, first):
            if process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.popen.pid, signal.SIGCONT)
                process.stop()
