"""PostgreSQL restarted in the middle of a burst of replies: none is lost, none is sent twice, each
conversation's replies leave in the order they were queued.

The platform runs on a PostgreSQL cluster of its own (shared.embedded, in a temporary directory: the suite's
server is never restarted) and a Redis of its own (broker, leases, limits): one web process, a sends worker,
a worker for the other pools, and beat; the suite's sandbox plays Meta. The replies wait while the number's
sends are paused, then go at the number's pace; once a quarter of them have been sent, PostgreSQL is stopped
(`-m fast`: every session is cut, the dispatcher's included) for DOWN_SECONDS and started again on the same
socket.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from shared import db
from shared.db import unit_of_work
from shared.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from shared.models import Message, MessageStatus
from shared.queueing.names import QUEUES, SENDS
from shared.services import messages
from shared.settings import use_settings
from tests.conftest import alembic_config, reset_clients
from tests.integration.conftest import Process, answers, process_env, wait_for
from tests.integration.test_conversations_end_to_end import TERMINAL, customer, open_inbox, quiet_number
from tests.integration.test_dispatcher import SENT_OR_LATER, _sends_worker, graph_sends, reply, sends_paused

pytestmark = pytest.mark.integration

CONVERSATIONS = 10
REPLIES_EACH = 20  # 200 replies; at THROUGHPUT_MPS the burst lasts about 5 s
THROUGHPUT_MPS = 40
DOWN_SECONDS = 2.0
# Later than a takeover (a dispatcher that failed holds the number until its lease lapses, 10 s): a status
# arriving first would settle a reply in doubt and hide a blind resend of it.
STATUSES_AFTER_SECONDS = 15.0


@contextlib.contextmanager
def _running(process: Process):
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def platform_on_its_own_postgres(migrated, sandbox, app, tmp_path):
    """(its PostgreSQL engine, an inbox on its web process, its sends worker). This test's own reads and
    writes go to the platform's stores too, until the end."""
    with contextlib.ExitStack() as cleanup:
        # Not under tmp_path: pytest makes its base directory private again whenever a run starts, and the
        # server's own system user (when tests run as root) must reach its data directory to stop.
        stores = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="pytake-pg-restart-")))
        postgres = EmbeddedPostgres(name="DATABASE_URL", data_dir=stores / "postgres")
        database_url = postgres.start()
        cleanup.callback(postgres.stop)
        redis = EmbeddedRedis(name="REDIS_URL", data_dir=stores / "redis")
        own = migrated.with_overrides(database_url=database_url, redis_url=redis.start())
        cleanup.callback(redis.stop)
        command.upgrade(alembic_config(own.database_url), "head")
        use_settings(own)
        reset_clients()
        cleanup.callback(lambda: (use_settings(migrated), reset_clients()))

        env = process_env(own, WHATSAPP_API_BASE=sandbox, WEB_CONCURRENCY="1")
        web_port = free_port()
        web = f"http://127.0.0.1:{web_port}"
        cleanup.enter_context(_running(Process("web", [
            sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{web_port}",
            "--no-control-socket", "wsgi:app"], env, tmp_path)))
        pools = cleanup.enter_context(_running(Process("pools", [
            sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q",
            ",".join(queue for queue in QUEUES if queue != SENDS), "-n", "pg-restart-pools@%h", "--concurrency", "1",
            "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            env, tmp_path)))
        cleanup.enter_context(_running(Process("beat", [
            sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--schedule", str(tmp_path / "beat-schedule"),
            "--loglevel", "INFO"], env, tmp_path)))
        sends_worker = cleanup.enter_context(_running(_sends_worker(own, sandbox, tmp_path, "pg-restart-sends")))
        wait_for(lambda: answers(f"{web}/healthz"), timeout=60, interval=0.3, what="the web process")
        wait_for(lambda: " ready." in pools.log(), timeout=60, interval=0.3, what="the worker of the other pools")

        inbox = open_inbox(web, sandbox, app, name="Restart Org")
        cleanup.callback(quiet_number, sandbox)
        yield postgres, inbox, sends_worker


def _statuses(ids: list[str]) -> dict[str, MessageStatus]:
    with unit_of_work() as session:
        return {str(i): s for i, s in session.execute(
            select(Message.id, Message.status).where(Message.id.in_([uuid.UUID(i) for i in ids])))}


def test_postgres_restarted_mid_burst_loses_no_reply_sends_none_twice_and_keeps_each_conversations_order(
        platform_on_its_own_postgres):
    postgres, inbox, sends_worker = platform_on_its_own_postgres
    paced = inbox.api("PATCH", f"/numbers/{inbox.number_id}", inbox.admin, json={"throughput_mps": THROUGHPUT_MPS})
    assert paced.status_code == 200, paced.text
    # Meta's pair rate (one message per 6 s per customer, after a burst) is not what this test is about: a burst
    # to one customer cut by the outage would otherwise get its later replies refused with 131056 for minutes.
    # Statuses come late, so what was in doubt at the restart is settled from our own records, not by a status.
    inbox.sandbox_number(pair_rate_interval_seconds=0.001, webhook_delays={"sent": STATUSES_AFTER_SECONDS})
    wa_ids = [customer() for _ in range(CONVERSATIONS)]
    for wa_id in wa_ids:
        inbox.customer_says(wa_id, "hello")
    conversations = [wait_for(lambda: inbox.conversation_of(wa_id), timeout=60, what="the conversation")
                     for wa_id in wa_ids]
    texts = {wa_id: [f"reply {n} to {wa_id}" for n in range(REPLIES_EACH)] for wa_id in wa_ids}

    def queue_replies(conversation, wa_id) -> list[str]:  # one after the other: the order to keep
        return [reply(inbox, conversation.id, text) for text in texts[wa_id]]

    # Queued while the number waits, so the burst is all there when its sends resume.
    with sends_paused(inbox), ThreadPoolExecutor(CONVERSATIONS) as agents:
        ids = [i for queued in agents.map(queue_replies, conversations, wa_ids) for i in queued]

    def sent() -> int:
        return sum(status in SENT_OR_LATER for status in _statuses(ids).values())

    wait_for(lambda: sent() >= len(ids) // 4, timeout=60, interval=0.02, what="a quarter of the burst to be sent")
    postgres.stop()
    stopped_at = time.time()
    time.sleep(DOWN_SECONDS)  # the outage itself, not a wait for a result
    postgres.start_again()
    db.dispose_engine()  # this test's own pool: its connections died with the server

    def requested() -> list[str]:
        return [s.callback for wa_id in wa_ids for s in graph_sends(inbox, wa_id)]

    def settled():
        statuses = _statuses(ids)
        if not all(status in TERMINAL for status in statuses.values()):
            return None
        at_meta = set(requested())
        # A reply that left but whose outcome was lost stays `unknown` until its status webhook settles it.
        return not any(status == MessageStatus.unknown and messages.callback_data(i) in at_meta
                       for i, status in statuses.items()) and statuses

    statuses = wait_for(settled, timeout=90, interval=0.5, what="every reply to settle after the restart")
    assert set(statuses.values()) <= SENT_OR_LATER, collections.Counter(statuses.values())  # none failed
    sends = [s for wa_id in wa_ids for s in graph_sends(inbox, wa_id)]
    assert 0 < sum(s.at < stopped_at for s in sends) < len(ids)  # the restart cut the burst in the middle
    callbacks = [s.callback for s in sends]
    twice = [(s.callback, s.error_code, round(s.at - stopped_at, 3)) for s in sends if callbacks.count(s.callback) > 1]
    assert not twice, twice  # no reply requested twice (none refused either)
    assert set(callbacks) == {messages.callback_data(i) for i in ids}
    for wa_id in wa_ids:  # each accepted once, in the order queued
        assert [m["request"]["text"]["body"] for m in inbox.sent_to(wa_id)] == texts[wa_id], wa_id
    assert sends_worker.popen.poll() is None, sends_worker.log()[-3000:]  # the sends worker lived through it
