"""Exactly the MongoDB operations shared/events.py uses, against the configured server (nx-27017 here).

If these pass against both the stand-in and a real MongoDB, the event log behaves the same on both.
"""

import datetime as dt
import uuid

import pytest

from shared import events


@pytest.fixture
def event_store(migrated):
    events.close_client()
    events.ensure_indexes()
    yield
    events.get_database()[events.EVENTS].delete_many({})
    events.close_client()


def test_ping(event_store):
    events.ping()


def test_a_subjects_timeline_comes_back_oldest_first_and_scoped(event_store):
    org, other_org, job_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)
    for minutes, name in [(2, "jobs.succeeded"), (0, "jobs.created"), (1, "jobs.claimed")]:
        events.append_event(
            org_id=org, event=name, subject_type="job", subject_id=job_id,
            occurred_at=start + dt.timedelta(minutes=minutes), data={"n": minutes},
        )
    events.append_event(org_id=other_org, event="jobs.created", subject_type="job", subject_id=job_id)

    timeline = events.events_for(org_id=org, subject_type="job", subject_id=job_id)
    assert [event["event"] for event in timeline] == ["jobs.created", "jobs.claimed", "jobs.succeeded"]
    assert timeline[0]["occurred_at"] == start  # timezone-aware, exact to the millisecond
    assert timeline[1]["data"] == {"n": 1}


def test_appending_the_same_event_id_twice_stores_it_once(event_store):
    org, subject = uuid.uuid4(), uuid.uuid4()
    for _ in range(2):
        events.append_event(
            org_id=org, event="webhooks.received", subject_type="webhook", subject_id=subject,
            event_id="wamid.HBgLMTIzNDU2Nzg5MA==", data={"attempt": _},
        )
    timeline = events.events_for(org_id=org, subject_type="webhook", subject_id=subject)
    assert len(timeline) == 1 and timeline[0]["data"] == {"attempt": 0}  # the first write wins


def test_a_batch_lands_in_one_write_and_skips_entries_stored_already(event_store):
    """A redelivered task's batch: entries stored by the first delivery are skipped, the new ones land."""
    org, subject = uuid.uuid4(), uuid.uuid4()

    def entry(step: str) -> dict:
        return {"org_id": org, "event": f"messages.{step}", "subject_type": "message", "subject_id": subject,
                "event_id": f"message:{subject}:{step}", "data": {"step": step}}

    assert events.append_events([entry("queued"), entry("sent")]) == 2
    assert events.append_events([entry("sent"), entry("delivered"), entry("queued"), entry("read")]) == 2
    assert events.append_events([]) == 0
    timeline = events.events_for(org_id=org, subject_type="message", subject_id=subject)
    assert sorted(event["event"] for event in timeline) == [
        "messages.delivered", "messages.queued", "messages.read", "messages.sent"]
