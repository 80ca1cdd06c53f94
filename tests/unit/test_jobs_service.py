"""The intent-record lifecycle: get-or-create, publish after commit, claim, progress, finish, fail, cancel, sweep."""

import datetime as dt
import uuid

import pytest
from sqlalchemy import select, update

from shared import db
from shared.errors import IdempotencyKeyReusedError, JobNotCancellableError, JobNotFoundError
from shared.models import Job, JobStatus, Organization, User
from shared.models.base import utcnow
from shared.services import jobs
from tests.factories import make_user

TASK = "maintenance.export_things"


def make_job(session, org, **overrides):
    values = {"org_id": org.id, "kind": "things.export", "task_name": TASK, **overrides}
    job, _ = jobs.create_job(session, **values)
    return job


def test_a_job_is_published_only_after_its_transaction_commits(db_session, organization, published):
    job = make_job(db_session, organization)
    assert published == []
    db_session.commit()
    assert published == [(TASK, {"job_id": str(job.id), "org_id": str(organization.id)})]


def test_a_rolled_back_job_is_never_published(db_session, organization, published):
    make_job(db_session, organization)
    db_session.rollback()
    db_session.commit()
    assert published == []


def test_the_same_idempotency_key_returns_the_first_job_and_publishes_once(db_session, organization, published):
    first, created = jobs.create_job(
        db_session, org_id=organization.id, kind="things.export", task_name=TASK, idempotency_key="k-1"
    )
    again, created_again = jobs.create_job(
        db_session, org_id=organization.id, kind="things.export", task_name=TASK, idempotency_key="k-1"
    )
    db_session.commit()
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert len(published) == 1


def test_an_idempotency_key_is_scoped_to_its_organization(db_session, organization):
    other = Organization(name="Other")
    db_session.add(other)
    db_session.flush()
    a = make_job(db_session, organization, idempotency_key="shared-key")
    b = make_job(db_session, other, idempotency_key="shared-key")
    assert a.id != b.id


def test_reusing_a_key_for_a_different_request_is_a_conflict(db_session, organization):
    make_job(db_session, organization, idempotency_key="k-2", params={"format": "csv"})
    with pytest.raises(IdempotencyKeyReusedError):
        make_job(db_session, organization, idempotency_key="k-2", params={"format": "xlsx"})


def test_only_one_delivery_wins_the_claim(db_session, organization):
    job = make_job(db_session, organization)
    first = jobs.claim_job(db_session, job_id=job.id, task_id="delivery-a", lease_seconds=60)
    second = jobs.claim_job(db_session, job_id=job.id, task_id="delivery-b", lease_seconds=60)
    assert first is not None and first.status == JobStatus.running and first.attempts == 1
    assert second is None


def test_a_redelivered_message_takes_its_claim_back_and_counts_an_attempt(db_session, organization):
    job = make_job(db_session, organization)
    jobs.claim_job(db_session, job_id=job.id, task_id="delivery-a", lease_seconds=60)
    again = jobs.claim_job(db_session, job_id=job.id, task_id="delivery-a", lease_seconds=60)
    assert again is not None and again.attempts == 2


def test_a_job_out_of_attempts_is_failed_instead_of_run(db_session, organization):
    job = make_job(db_session, organization, max_attempts=2)
    for _ in range(2):
        assert jobs.claim_job(db_session, job_id=job.id, task_id="same", lease_seconds=60) is not None
    assert jobs.claim_job(db_session, job_id=job.id, task_id="same", lease_seconds=60) is None
    db_session.refresh(job)
    assert job.status == JobStatus.failed
    assert job.error_code == "attempts_exhausted"


def test_progress_finish_and_the_result(db_session, organization):
    job = make_job(db_session, organization)
    jobs.claim_job(db_session, job_id=job.id, task_id="t", lease_seconds=60)
    assert jobs.report_progress(db_session, job_id=job.id, progress=140, message="half", lease_seconds=60)
    db_session.refresh(job)
    assert (job.progress, job.progress_message) == (100, "half")  # clamped to 0..100
    assert jobs.finish_job(db_session, job_id=job.id, result={"rows": 3})
    db_session.refresh(job)
    assert job.status == JobStatus.succeeded and job.result == {"rows": 3} and job.finished_at is not None
    assert not jobs.finish_job(db_session, job_id=job.id, result={"rows": 4})  # a second finish changes nothing


def test_fail_records_code_and_message(db_session, organization):
    job = make_job(db_session, organization)
    assert jobs.fail_job(db_session, job_id=job.id, code="invalid_file", message="not a CSV")
    db_session.refresh(job)
    assert (job.status, job.error_code, job.error_message) == (JobStatus.failed, "invalid_file", "not a CSV")


def test_cancel_stops_a_running_job_at_its_next_progress_report(db_session, organization):
    job = make_job(db_session, organization)
    jobs.claim_job(db_session, job_id=job.id, task_id="t", lease_seconds=60)
    cancelled = jobs.cancel_job(db_session, org_id=organization.id, job_id=job.id, reason="wrong file")
    assert cancelled.status == JobStatus.cancelled and cancelled.error_message == "wrong file"
    assert not jobs.report_progress(db_session, job_id=job.id, progress=50, lease_seconds=60)
    with pytest.raises(JobNotCancellableError):
        jobs.cancel_job(db_session, org_id=organization.id, job_id=job.id)


def test_another_organizations_job_is_not_found(db_session, organization):
    job = make_job(db_session, organization)
    with pytest.raises(JobNotFoundError):
        jobs.get_job(db_session, org_id=uuid.uuid4(), job_id=job.id)
    with pytest.raises(JobNotFoundError):
        jobs.get_job(db_session, org_id=organization.id, job_id="not-a-uuid")


def test_list_filters_and_pages_newest_first(db_session, organization):
    made = [make_job(db_session, organization, kind="a" if i % 2 else "b") for i in range(5)]
    page = jobs.list_jobs(db_session, org_id=organization.id, limit=2)
    seen = list(page.items)
    while page.next_cursor:
        page = jobs.list_jobs(
            db_session, org_id=organization.id, limit=2, after=jobs.decode_cursor(page.next_cursor)
        )
        seen.extend(page.items)
    assert [job.id for job in seen] == [job.id for job in sorted(made, key=lambda j: (j.created_at, j.id), reverse=True)]
    only_a = jobs.list_jobs(db_session, org_id=organization.id, kind="a").items
    assert {job.kind for job in only_a} == {"a"} and len(only_a) == 2


def _age(session, job, **values):
    session.execute(update(Job).where(Job.id == job.id).values(**values))
    session.refresh(job)


def test_the_sweep_republishes_a_job_whose_publish_was_lost(db_session, organization, published):
    job = make_job(db_session, organization)
    db_session.commit()
    published.clear()  # the publish that was "lost"
    _age(db_session, job, enqueued_at=utcnow() - dt.timedelta(minutes=10))
    report = jobs.sweep_stale_jobs(db_session, requeue_after=dt.timedelta(minutes=2))
    db_session.commit()
    assert report.requeued == [job.id]
    assert published == [(TASK, {"job_id": str(job.id), "org_id": str(organization.id)})]
    # A fresh publish is not repeated by the next sweep.
    assert jobs.sweep_stale_jobs(db_session, requeue_after=dt.timedelta(minutes=2)).requeued == []


def test_the_sweep_fails_jobs_out_of_attempts_and_reclaims_dead_workers_jobs(db_session, organization):
    spent = make_job(db_session, organization, max_attempts=1)
    _age(db_session, spent, attempts=1)
    orphan = make_job(db_session, organization)
    jobs.claim_job(db_session, job_id=orphan.id, task_id="dead-worker", lease_seconds=60)
    _age(db_session, orphan, lease_expires_at=utcnow() - dt.timedelta(seconds=1))

    report = jobs.sweep_stale_jobs(db_session, requeue_after=dt.timedelta(minutes=2))
    db_session.refresh(spent)
    db_session.refresh(orphan)
    assert spent.status == JobStatus.failed and spent.error_code == "attempts_exhausted"
    assert report.reclaimed == [orphan.id]
    assert orphan.status == JobStatus.queued and orphan.id in report.requeued
    assert jobs.claim_job(db_session, job_id=orphan.id, task_id="new-delivery", lease_seconds=60) is not None


def test_soft_deleted_rows_are_hidden_unless_asked_for(db_session, organization):
    user = make_user(db_session, organization, email="gone@example.com")
    user.soft_delete()
    db_session.flush()
    db_session.expunge_all()
    assert db_session.execute(select(User).where(User.email == "gone@example.com")).scalar_one_or_none() is None
    hidden = select(User).where(User.email == "gone@example.com").execution_options(include_deleted=True)
    assert db_session.execute(hidden).scalar_one().is_deleted


def test_a_bound_organization_scopes_tenant_queries(db_session, organization):
    other = Organization(name="Other")
    db_session.add(other)
    db_session.flush()
    mine, theirs = make_job(db_session, organization), make_job(db_session, other)
    token = db.bind_organization(organization.id)
    try:
        visible = db_session.execute(select(Job.id)).scalars().all()
    finally:
        db.reset_organization(token)
    assert mine.id in visible and theirs.id not in visible
    everything = db_session.execute(select(Job.id)).scalars().all()
    assert {mine.id, theirs.id} <= set(everything)


def test_a_savepoint_released_inside_the_transaction_publishes_nothing_yet(migrated, published):
    """SQLAlchemy fires after_commit on a SAVEPOINT release too: the publish must wait for the real commit."""
    from sqlalchemy import text

    from shared.db import dispose_engine, set_session_factory, unit_of_work
    from shared.queueing.publish import enqueue_on_commit

    set_session_factory(None)
    try:
        with unit_of_work() as session:
            enqueue_on_commit(session, "sends.send_message", message_id="m-1", org_id="o-1")
            with session.begin_nested():  # e.g. queue_message's idempotency-key insert
                session.execute(text("SELECT 1"))
            assert published == []
        assert published == [("sends.send_message", {"message_id": "m-1", "org_id": "o-1"})]
    finally:
        dispose_engine()
