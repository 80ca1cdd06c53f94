"""The event store (MongoDB) down: event-log lines wait in PostgreSQL instead of being lost, writes stop waiting
for the store after one failure, and the maintenance sweep replays the backlog once the store is back."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import uuid

import pytest
import structlog.testing
from sqlalchemy import create_engine, delete, select, text

from shared import db, event_backlog, events
from shared.audit import audit_on_commit
from shared.db import unit_of_work
from shared.embedded import free_port
from shared.models import EventBacklogEntry, WebhookEvent
from shared.settings import get_settings, use_settings
from tests.unit.test_conversations import deliver, inbound, number, text as text_message  # noqa: F401
from workers.tasks.maintenance import replay_event_log_task

STORE_TIMEOUT = 2.0  # pymongo waits 3 s for a server that is not there; a skipped store answers at once


@contextlib.contextmanager
def store_down(**overrides):
    """MONGODB_URL at a closed port (and any other settings given), for what runs inside."""
    normal = get_settings()
    use_settings(normal.with_overrides(mongodb_url=f"mongodb://127.0.0.1:{free_port()}", **overrides))
    events.close_client()
    try:
        yield
    finally:
        use_settings(normal)
        events.close_client()


def backlog(session) -> list[EventBacklogEntry]:
    return list(session.execute(select(EventBacklogEntry).order_by(EventBacklogEntry.occurred_at)).scalars())


def line(subject_id, event="organizations.renamed", **extra) -> dict:
    """An event-log line about organization `subject_id`, its own."""
    return {"org_id": subject_id, "event": event, "subject_type": "organization", "subject_id": subject_id,
            "data": {"name": "Acme"}, **extra}


def timeline(subject_id) -> list[str]:
    return [entry["event"] for entry in
            events.events_for(org_id=subject_id, subject_type="organization", subject_id=subject_id)]


def test_an_inbound_message_processed_while_the_store_is_down_reaches_the_event_log_after(deliver, db_session):
    with store_down():
        deliver(inbound(text_message("Hi, is anyone there?")))
        row_id = db_session.execute(select(WebhookEvent.id)).scalar_one()
        waiting = backlog(db_session)
        assert [(entry.event, entry.subject_id) for entry in waiting] == [("webhooks.received", str(row_id))]
        assert waiting[0].occurred_at.tzinfo is not None
        replay_event_log_task()  # the store is still down: the sweep leaves the line where it is
        assert len(backlog(db_session)) == 1

    replay_event_log_task()
    archived = events.events_for(org_id=waiting[0].org_id, subject_type="webhook_event", subject_id=row_id)
    assert [entry["event"] for entry in archived] == ["webhooks.received"]
    assert abs(archived[0]["occurred_at"] - waiting[0].occurred_at) < dt.timedelta(milliseconds=1)  # not replay time
    assert "Hi, is anyone there?" in archived[0]["data"]["body"]
    assert backlog(db_session) == []


def test_an_audit_line_keeps_its_id_and_time_through_the_backlog_and_a_second_replay_adds_nothing(db_session):
    subject = org_id = uuid.uuid4()
    happened = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.timezone.utc)
    with store_down():
        with unit_of_work() as session:
            audit_on_commit(session, org_id=org_id, action="organizations.renamed", subject_type="organization",
                            subject_id=subject, actor_id=None, data={"name": "Acme"}, event_id="rename-1",
                            occurred_at=happened, came_from={})
            audit_on_commit(session, org_id=org_id, action="organizations.plan_changed", subject_type="organization",
                            subject_id=subject, actor_id=None, data={"plan": "starter"}, came_from={})
        waiting = backlog(db_session)
        assert [entry.event_id for entry in waiting][0] == "rename-1" and waiting[1].event_id  # one was made up

    assert event_backlog.replay() == 2
    with store_down():  # the same lines spilled again (a task redelivered while the store was down)
        with unit_of_work() as session:
            for entry in waiting:
                audit_on_commit(session, org_id=org_id, action=entry.event, subject_type="organization",
                                subject_id=subject, actor_id=None, event_id=entry.event_id, came_from={})
    assert event_backlog.replay() == 2
    stored = events.events_for(org_id=org_id, subject_type="organization", subject_id=subject)
    assert [(entry["_id"], entry["event"]) for entry in stored] == [
        ("rename-1", "organizations.renamed"), (waiting[1].event_id, "organizations.plan_changed")]
    assert stored[0]["occurred_at"] == happened


def test_after_one_failure_writes_skip_the_store_until_the_retry_time_has_passed(db_session):
    subject = uuid.uuid4()
    with store_down(event_store_retry_seconds=3):
        started = time.monotonic()
        event_backlog.write([line(subject)])
        assert time.monotonic() - started > STORE_TIMEOUT  # the first write found out the hard way

        started = time.monotonic()
        for _ in range(5):
            event_backlog.write([line(subject)])
        assert time.monotonic() - started < 0.5 * STORE_TIMEOUT, "writes kept waiting for a store known to be down"
        assert len(backlog(db_session)) == 6

        time.sleep(3)  # the retry time passes: the next write asks the store again
        started = time.monotonic()
        event_backlog.write([line(subject)])
        assert time.monotonic() - started > STORE_TIMEOUT
        assert len(backlog(db_session)) == 7


def test_the_sweep_replays_oldest_first_in_batches(db_session):
    subject = uuid.uuid4()
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
    entries = [line(subject, event=f"step.{n}", event_id=f"step-{subject}-{n}",
                    occurred_at=start + dt.timedelta(minutes=n)) for n in range(5)]
    event_backlog.spill(list(reversed(entries)), reason="the store was down")

    assert event_backlog.replay(batch_size=2, max_batches=1) == 2
    assert timeline(subject) == ["step.0", "step.1"]
    assert [entry.event for entry in backlog(db_session)] == ["step.2", "step.3", "step.4"]
    assert event_backlog.replay(batch_size=2) == 3
    assert timeline(subject) == [f"step.{n}" for n in range(5)]
    assert backlog(db_session) == []


def test_when_postgresql_refuses_the_backlog_too_the_gap_is_logged_with_its_count(migrated):
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    db.dispose_engine()
    try:
        with store_down(database_url=closed), structlog.testing.capture_logs() as logged:
            event_backlog.write([line(uuid.uuid4()) for _ in range(3)])  # raises nothing: the change has committed
    finally:
        db.dispose_engine()
    gaps = [entry for entry in logged if entry["event"] == "event_log.gap"]
    assert len(gaps) == 1 and gaps[0]["entries"] == 3 and gaps[0]["log_level"] == "error"


@pytest.fixture
def committed_backlog(migrated):
    """Backlog rows committed for real, so another connection can lock them; removed afterwards."""
    db.set_session_factory(None)
    db.dispose_engine()
    yield
    with unit_of_work() as session:
        session.execute(delete(EventBacklogEntry))
    db.dispose_engine()


def test_a_sweep_skips_rows_another_sweep_holds(committed_backlog, migrated):
    subject = uuid.uuid4()
    event_backlog.spill([line(subject, event=f"step.{n}", event_id=f"held-{subject}-{n}") for n in range(3)],
                        reason="the store was down")
    other = create_engine(migrated.database_url)
    with other.connect() as connection:  # another sweep, in the middle of its batch
        held = connection.execute(text("SELECT id FROM event_backlog WHERE event = 'step.0' FOR UPDATE")).scalar_one()
        replayed: list[int] = []
        sweep = threading.Thread(target=lambda: replayed.append(event_backlog.replay()))
        sweep.start()
        sweep.join(timeout=30)
        connection.rollback()
    other.dispose()
    assert replayed == [2], "the sweep waited for, or wrote, rows another sweep held"
    with unit_of_work() as session:
        assert [row.id for row in backlog(session)] == [held]
    assert sorted(timeline(subject)) == ["step.1", "step.2"]


def test_a_timeline_read_while_the_store_is_down_is_a_503_that_names_no_internals(deliver, db_session, client,
                                                                                 admin_headers):
    from tests.unit.test_conversations import the_conversation

    deliver(inbound(text_message("Hi")))
    conversation = the_conversation(db_session)
    with store_down():
        answer = client.get(f"/api/v1/conversations/{conversation.id}/timeline", headers=admin_headers)
    assert (answer.status_code, answer.get_json()["code"]) == (503, "event_store_unavailable")
    assert "127.0.0.1" not in answer.get_json()["message"] and "Errno" not in answer.get_json()["message"]
    events.close_client()  # the store is back: the breaker of this process starts afresh
    assert client.get(f"/api/v1/conversations/{conversation.id}/timeline", headers=admin_headers).status_code == 200
