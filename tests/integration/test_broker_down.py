"""The broker down for 30 s while agents reply and customers write: every intent is kept, and all of it is
processed once the broker is back.

A broker of its own (a Redis server on a free port, BROKER_URL) serves one web process (gunicorn, as the
Procfile starts it), one worker consuming every queue, and beat; the cache, leases and rate limits stay on
another Redis (REDIS_URL), which is what BROKER_URL is for. The database and that Redis are the test's own
(`own_stores`), so the session's worker and beat never touch these rows. The broker is stopped for BROKER_DOWN_SECONDS:
the API still answers 202 to replies and 200 to webhooks, because both only write rows and a lost publish is
re-made by the sweeps (beat) once the broker returns.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from shared.embedded import free_port, redis_server_binary, wait_for_port
from shared.models import Direction, MessageStatus
from tests.integration.conftest import process_env, start_platform, wait_for
from tests.integration.test_conversations_end_to_end import TERMINAL, customer, open_inbox, quiet_number

pytestmark = pytest.mark.integration

BROKER_DOWN_SECONDS = 30
REPLIES = 5
CUSTOMER_MESSAGES = 5


class Broker:
    """A Redis server in the foreground, stopped and started again on the same port."""

    def __init__(self, log_dir) -> None:
        self.port, self.log_dir, self.popen = free_port(), log_dir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.popen = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly",
             "no", "--dir", str(self.log_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=10, what="the test's broker")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(timeout=10)


@pytest.fixture
def platform_on_its_own_broker(own_stores, sandbox, tmp_path):
    broker = Broker(tmp_path)
    broker.start()
    try:
        env = process_env(own_stores, BROKER_URL=broker.url, WHATSAPP_API_BASE=sandbox, WEB_CONCURRENCY="1")
        web, processes = start_platform(env, tmp_path, "broker-down")
        try:
            yield broker, web, processes
        finally:
            for process in processes:
                process.stop()
            quiet_number(sandbox)
    finally:
        broker.stop()


def test_with_the_broker_down_for_30_s_replies_and_webhooks_are_kept_and_processed_after(
        platform_on_its_own_broker, sandbox, app):
    broker, web, processes = platform_on_its_own_broker
    inbox = open_inbox(web, sandbox, app, name="Broker Down Org")
    wa_id = customer()
    inbox.customer_says(wa_id, "Hello before the outage")
    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=60, what="the conversation")

    broker.stop()
    down_since = time.monotonic()
    replies = []
    for n in range(REPLIES):
        started = time.monotonic()
        answer = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.admin,
                           json={"type": "text", "text": {"body": f"Reply {n} while the broker is down"}})
        assert answer.status_code == 202, answer.text
        assert time.monotonic() - started < 5, "a reply waited on the broker"
        replies.append(answer.json()["id"])
    for n in range(CUSTOMER_MESSAGES):
        inbox.customer_says(wa_id, f"Customer {n} while the broker is down")
    requests.post(f"{sandbox}/_sandbox/drain", json={"timeout": 20}, timeout=30)  # every webhook was answered

    def inbound_texts():
        return [m.content["body"] for m in inbox.messages_of(conversation.id, Direction.inbound)]

    time.sleep(max(0.0, BROKER_DOWN_SECONDS - (time.monotonic() - down_since)))
    # Kept, not processed: the outage was real (nothing reached the pools)...
    assert inbound_texts() == ["Hello before the outage"]
    assert {inbox.message(i).status for i in replies} == {MessageStatus.queued}
    dead = [process for process in processes if process.popen.poll() is not None]
    assert not dead, "died with the broker: " + "; ".join(
        f"{process.name} (exit {process.popen.returncode}): {process.log()[-2000:]}" for process in dead)
    broker.start()  # ... and everything is processed once it is back

    wait_for(lambda: len(inbound_texts()) == 1 + CUSTOMER_MESSAGES, timeout=90, interval=0.5,
             what="the webhooks received during the outage to be processed")
    assert inbound_texts()[1:] == [f"Customer {n} while the broker is down" for n in range(CUSTOMER_MESSAGES)]

    settled = wait_for(lambda: all((m := inbox.message(i)).status in TERMINAL for i in replies) and
                       [inbox.message(i) for i in replies], timeout=90, interval=0.5,
                       what="the replies queued during the outage to be sent")
    assert {m.status for m in settled} <= {MessageStatus.sent, MessageStatus.delivered, MessageStatus.read}
    sent = [entry["request"]["text"]["body"] for entry in inbox.sent_to(wa_id)]
    assert sent == [f"Reply {n} while the broker is down" for n in range(REPLIES)]  # each once, in order
