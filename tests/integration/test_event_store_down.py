"""The event store (MongoDB) down while customers write in: the pipeline keeps working, and the timeline lines
written meanwhile reach the event log once the store is back.

The platform runs against an event store of its own (an nx-27017 stand-in on a free port, stopped and started
again on the same port and data; the suite's stand-in is shared and never stopped) and a broker of its own (so
only this test's worker takes its tasks): one web process, one worker for every queue, and beat, with the suite's
PostgreSQL and sandbox.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from shared import events
from shared.db import unit_of_work
from shared.embedded import EmbeddedRedis, free_port, wait_for_port
from shared.models import Direction, EventBacklogEntry, Message, Organization, WebhookEvent
from shared.services import numbers
from shared.settings import get_settings, use_settings
from tests.integration.conftest import Process, process_env, start_platform, wait_for
from tests.integration.test_conversations_end_to_end import customer

pytestmark = pytest.mark.integration

NUMBER = {"waba_id": "700300900", "phone_number_id": "800300900", "display_phone_number": "15550300900",
          "access_token": "EAAG-sandbox-event-store-token", "app_secret": "sandbox-event-store-secret"}
WHILE_DOWN = 5


class EventStore:
    """An nx-27017 stand-in in the foreground, stopped and started again on the same port and data."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port, self.popen = directory, free_port(), None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nx-27017", path=str(Path(sys.executable).parent)) or "nx-27017"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            [binary, "--data-dir", str(self.directory / "data"), "--host", "127.0.0.1", "-p", str(self.port),
             "--log-file", str(self.directory / "nx-27017.log"), "--pid-file", str(self.directory / "nx-27017.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=30, what="the test's event store")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(timeout=15)

    def timeline(self, *, org_id, subject_type: str, subject_id) -> list[dict]:
        """What this store holds for the subject, read as the platform reads it (shared.events)."""
        normal = get_settings()
        use_settings(normal.with_overrides(mongodb_url=self.url))
        events.close_client()
        try:
            return events.events_for(org_id=org_id, subject_type=subject_type, subject_id=subject_id)
        finally:
            use_settings(normal)
            events.close_client()


@pytest.fixture
def platform_on_its_own_event_store(own_stores, sandbox, tmp_path):
    store = EventStore(tmp_path / "mongo")
    broker = EmbeddedRedis(name="broker", data_dir=tmp_path / "broker")
    processes: list[Process] = []
    try:
        store.start()
        broker_url = broker.start()
        env = process_env(own_stores, MONGODB_URL=store.url, BROKER_URL=broker_url, WHATSAPP_API_BASE=sandbox,
                          WEB_CONCURRENCY="1", EVENT_STORE_RETRY_SECONDS="3")
        web, processes = start_platform(env, tmp_path, "event-store-down")
        yield store, web, processes
    finally:
        for process in processes:
            process.stop()
        requests.patch(f"{sandbox}/_sandbox/numbers/{NUMBER['phone_number_id']}", json={"callback_url": None},
                       timeout=5)
        requests.post(f"{sandbox}/_sandbox/drain", json={"timeout": 10}, timeout=30)
        broker.stop()
        store.stop()


def _organization_with_number(web: str, sandbox: str):
    with unit_of_work() as session:
        org = Organization(name="Event Store Down Org", plan_code="enterprise")
        session.add(org)
        session.flush()
        numbers.create_number(session, org=org, **NUMBER)
        org_id = org.id
    requests.post(f"{sandbox}/_sandbox/numbers", json={**NUMBER, "callback_url": f"{web}/api/v1/webhooks/whatsapp"},
                  timeout=5).raise_for_status()
    return org_id


def _customer_says(sandbox: str, wa_id: str, body: str) -> None:
    requests.post(f"{sandbox}/_sandbox/numbers/{NUMBER['phone_number_id']}/inbound",
                  json={"from": wa_id, "type": "text", "text": {"body": body}}, timeout=10).raise_for_status()


def _inbound_texts(org_id) -> list[str]:
    with unit_of_work() as session:
        rows = session.execute(select(Message).where(Message.organization_id == org_id,
                                                     Message.direction == Direction.inbound)
                               .order_by(Message.sequence)).scalars()
        return [row.content["body"] for row in rows]


def _payloads(org_id) -> list:
    with unit_of_work() as session:
        return list(session.execute(select(WebhookEvent.id).where(WebhookEvent.organization_id == org_id)).scalars())


def _waiting_in_backlog(org_id) -> int:
    with unit_of_work() as session:
        return session.execute(select(func.count()).select_from(EventBacklogEntry)
                               .where(EventBacklogEntry.org_id == str(org_id))).scalar_one()


def _archived(store: EventStore, org_id, payload_ids) -> list:
    """The payloads whose `webhooks.received` line the event log holds."""
    return [payload_id for payload_id in payload_ids
            if [line["event"] for line in store.timeline(org_id=org_id, subject_type="webhook_event",
                                                         subject_id=payload_id)] == ["webhooks.received"]]


def test_with_the_event_store_down_inbound_messages_are_processed_and_their_lines_reach_the_log_after(
        platform_on_its_own_event_store, sandbox):
    store, web, processes = platform_on_its_own_event_store
    org_id = _organization_with_number(web, sandbox)
    wa_id = customer()
    _customer_says(sandbox, wa_id, "Hello before the outage")
    wait_for(lambda: _inbound_texts(org_id) == ["Hello before the outage"], timeout=60, what="the first message")
    first = _payloads(org_id)
    wait_for(lambda: _archived(store, org_id, first) == first, timeout=60, what="the first payload's line")

    store.stop()
    for n in range(WHILE_DOWN):
        _customer_says(sandbox, wa_id, f"Message {n} while the event store is down")
    expected = ["Hello before the outage", *(f"Message {n} while the event store is down" for n in range(WHILE_DOWN))]
    wait_for(lambda: _inbound_texts(org_id) == expected, timeout=60, interval=0.5,
             what="the messages sent during the outage to be processed")
    payloads = _payloads(org_id)
    assert len(payloads) == 1 + WHILE_DOWN
    wait_for(lambda: _waiting_in_backlog(org_id) >= WHILE_DOWN, timeout=30, interval=0.5,
             what="the outage's lines to wait in PostgreSQL")
    worker = processes[1]
    wait_for(lambda: "event_log.replay_deferred" in worker.log(), timeout=30, interval=0.5,
             what="a sweep to find the event store still down")
    assert all(process.popen.poll() is None for process in processes), "a process died with the event store"
    assert _waiting_in_backlog(org_id) >= WHILE_DOWN, "the sweep dropped lines it could not write"

    store.start()
    wait_for(lambda: sorted(_archived(store, org_id, payloads)) == sorted(payloads), timeout=90, interval=1,
             what="the lines written during the outage to reach the event log")
    wait_for(lambda: _waiting_in_backlog(org_id) == 0, timeout=30, interval=0.5, what="the backlog to empty")
