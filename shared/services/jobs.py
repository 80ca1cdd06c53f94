"""Jobs pipeline: the lifecycle of the generic intent record.

queued --claim--> running --finish--> succeeded
                          --fail----> failed
queued/running --cancel--> cancelled

Every transition is a conditional UPDATE, so concurrent or redelivered workers
cannot both win (DESIGN §4.5). The sweep is what makes a lost publish or a dead
worker delay work instead of losing it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import structlog
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.errors import IdempotencyKeyReusedError, JobNotCancellableError, JobNotFoundError
from shared.models.base import utcnow
from shared.models.jobs import TERMINAL_JOB_STATUSES, Job, JobStatus
from shared.queueing.publish import enqueue_on_commit

log = structlog.get_logger(__name__)
ACTIVE = (JobStatus.queued, JobStatus.running)
ATTEMPTS_EXHAUSTED = "attempts_exhausted"


def _job_uuid(job_id: uuid.UUID | str) -> uuid.UUID:
    try:
        return uuid.UUID(str(job_id))
    except ValueError as exc:
        raise JobNotFoundError(f"job {job_id} not found") from exc


def create_job(
    session: Session,
    *,
    org_id: uuid.UUID,
    kind: str,
    task_name: str,
    params: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    created_by_id: uuid.UUID | None = None,
    max_attempts: int = 3,
) -> tuple[Job, bool]:
    """Write a queued job and publish its task after commit; returns (job, created).

    With an idempotency key, a second call returns the first job and publishes
    nothing; the same key for a different operation is a conflict.
    """
    params = params or {}
    now = utcnow()
    statement = (
        insert(Job)
        .values(
            organization_id=org_id,
            kind=kind,
            task_name=task_name,
            params=params,
            idempotency_key=idempotency_key,
            created_by_id=created_by_id,
            max_attempts=max_attempts,
            enqueued_at=now,
        )
        .returning(Job.id)
    )
    if idempotency_key is not None:
        statement = statement.on_conflict_do_nothing(
            index_elements=[Job.organization_id, Job.idempotency_key],
            index_where=Job.idempotency_key.is_not(None),
        )
    job_id = session.execute(statement).scalar_one_or_none()
    if job_id is None:
        existing = session.execute(
            select(Job).where(Job.organization_id == org_id, Job.idempotency_key == idempotency_key)
        ).scalar_one()
        if existing.kind != kind or existing.params != params:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was already used for a different request",
                details={"idempotency_key": idempotency_key, "job_id": str(existing.id)},
            )
        return existing, False
    job = session.get(Job, job_id)
    enqueue_on_commit(session, task_name, job_id=str(job_id), org_id=str(org_id))
    log.info("jobs.created", job_id=job_id, kind=kind, org_id=org_id)
    return job, True


def get_job(session: Session, *, org_id: uuid.UUID | None, job_id: uuid.UUID | str) -> Job:
    """org_id None means no organization is bound (system callers); otherwise another tenant's job is not found."""
    return get_owned(session, Job, job_id, org_id=org_id, not_found=JobNotFoundError)


@dataclass(frozen=True)
class JobPage:
    items: Sequence[Job]
    next_cursor: str | None


def _encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """Raises ValueError on anything that is not a cursor this module produced."""
    padded = cursor + "=" * (-len(cursor) % 4)
    created_at, job_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    return dt.datetime.fromisoformat(created_at), uuid.UUID(job_id)


def list_jobs(
    session: Session,
    *,
    org_id: uuid.UUID | None,
    kind: str | None = None,
    status: JobStatus | None = None,
    limit: int = 50,
    after: tuple[dt.datetime, uuid.UUID] | None = None,
) -> JobPage:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    if org_id is not None:
        query = query.where(Job.organization_id == org_id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if status is not None:
        query = query.where(Job.status == status)
    if after is not None:
        created_at, job_id = after
        query = query.where(
            or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id))
        )
    rows = session.execute(query).scalars().all()
    items, more = rows[:limit], len(rows) > limit
    return JobPage(items=items, next_cursor=_encode_cursor(items[-1]) if more else None)


def claim_job(session: Session, *, job_id: uuid.UUID | str, task_id: str, lease_seconds: int) -> Job | None:
    """Move the job to running for this delivery; None when it is not ours to run.

    A queued job is claimable; so is a running job held by the same Celery task id,
    which is the same message redelivered after its worker died. Each claim counts an
    attempt; a job whose attempts are spent is failed instead of run again.
    """
    job_id = _job_uuid(job_id)
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.attempts < Job.max_attempts,
            or_(Job.status == JobStatus.queued, and_(Job.status == JobStatus.running, Job.task_id == task_id)),
        )
        .values(
            status=JobStatus.running,
            attempts=Job.attempts + 1,
            task_id=task_id,
            started_at=now,
            lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(Job)
        .execution_options(synchronize_session=False, populate_existing=True, all_tenants=True)
    ).scalar_one_or_none()
    if claimed is not None:
        log.info("jobs.claimed", job_id=job_id, attempt=claimed.attempts, task_id=task_id)
        return claimed
    exhausted = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE), Job.attempts >= Job.max_attempts)
        .values(
            status=JobStatus.failed,
            error_code=ATTEMPTS_EXHAUSTED,
            error_message="the job was attempted the maximum number of times without finishing",
            finished_at=now,
            lease_expires_at=None,
            updated_at=now,
        )
        .returning(Job)
        .execution_options(synchronize_session=False, populate_existing=True, all_tenants=True)
    ).scalar_one_or_none()
    if exhausted is not None:
        log.warning("jobs.attempts_exhausted", job_id=job_id)
    else:
        log.info("jobs.claim_lost", job_id=job_id, task_id=task_id)
    return None


def _transition(session: Session, job_id: uuid.UUID | str, from_statuses, **values: Any) -> bool:
    now = utcnow()
    # RETURNING the entity with populate_existing refreshes a copy already in the session.
    changed = session.execute(
        update(Job)
        .where(Job.id == _job_uuid(job_id), Job.status.in_(from_statuses))
        .values(updated_at=now, **values)
        .returning(Job)
        .execution_options(synchronize_session=False, populate_existing=True, all_tenants=True)
    ).scalar_one_or_none()
    return changed is not None


def report_progress(
    session: Session, *, job_id: uuid.UUID | str, progress: int, message: str | None = None, lease_seconds: int
) -> bool:
    """Record progress and extend the lease; False means the job is no longer running (cancelled): stop."""
    progress = max(0, min(100, int(progress)))
    return _transition(
        session,
        job_id,
        (JobStatus.running,),
        progress=progress,
        progress_message=message,
        lease_expires_at=utcnow() + dt.timedelta(seconds=lease_seconds),
    )


def finish_job(session: Session, *, job_id: uuid.UUID | str, result: dict[str, Any] | None = None) -> bool:
    finished = _transition(
        session,
        job_id,
        (JobStatus.running,),
        status=JobStatus.succeeded,
        progress=100,
        result=result or {},
        finished_at=utcnow(),
        lease_expires_at=None,
    )
    if finished:
        log.info("jobs.succeeded", job_id=job_id)
    return finished


def release_job(session: Session, *, job_id: uuid.UUID | str) -> bool:
    """Hand a running job back to the queue (a transient failure will retry it)."""
    return _transition(
        session, job_id, (JobStatus.running,), status=JobStatus.queued, enqueued_at=utcnow(), lease_expires_at=None
    )


def fail_job(session: Session, *, job_id: uuid.UUID | str, code: str, message: str) -> bool:
    failed = _transition(
        session,
        job_id,
        ACTIVE,
        status=JobStatus.failed,
        error_code=code,
        error_message=message,
        finished_at=utcnow(),
        lease_expires_at=None,
    )
    if failed:
        log.warning("jobs.failed", job_id=job_id, code=code)
    return failed


def cancel_job(
    session: Session, *, org_id: uuid.UUID | None, job_id: uuid.UUID | str, reason: str | None = None
) -> Job:
    """Cancel a queued or running job. A running task notices at its next progress report and stops."""
    job = get_job(session, org_id=org_id, job_id=job_id)
    if job.status in TERMINAL_JOB_STATUSES:
        raise JobNotCancellableError(
            f"job {job.id} is already {job.status.value}", details={"status": job.status.value}
        )
    _transition(
        session,
        job.id,
        ACTIVE,
        status=JobStatus.cancelled,
        error_code="cancelled",
        error_message=reason or "cancelled by request",
        finished_at=utcnow(),
        lease_expires_at=None,
    )
    log.info("jobs.cancelled", job_id=job.id)
    return job


@dataclass(frozen=True)
class SweepReport:
    requeued: list[uuid.UUID]
    failed: list[uuid.UUID]
    reclaimed: list[uuid.UUID]


def sweep_stale_jobs(
    session: Session, *, requeue_after: dt.timedelta, batch_size: int = 500, now: dt.datetime | None = None
) -> SweepReport:
    """Make sure no job is stuck: run by beat on the maintenance pool.

    1. running jobs whose lease passed (their worker died and no redelivery came) go back to queued;
    2. queued jobs with no attempts left are failed;
    3. queued jobs not published for `requeue_after` are published again (after commit).
    Rows are taken with SKIP LOCKED, so overlapping sweeps never fight.
    """
    now = now or utcnow()
    options = {"all_tenants": True}
    reclaimed = session.execute(
        update(Job)
        .where(
            Job.id.in_(
                select(Job.id)
                .where(Job.status == JobStatus.running, Job.lease_expires_at < now)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        .values(status=JobStatus.queued, task_id=None, lease_expires_at=None, enqueued_at=None, updated_at=now)
        .returning(Job.id)
        .execution_options(synchronize_session=False, **options)
    ).scalars().all()

    failed = session.execute(
        update(Job)
        .where(
            Job.id.in_(
                select(Job.id)
                .where(Job.status == JobStatus.queued, Job.attempts >= Job.max_attempts)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        .values(
            status=JobStatus.failed,
            error_code=ATTEMPTS_EXHAUSTED,
            error_message="the job was attempted the maximum number of times without finishing",
            finished_at=now,
            updated_at=now,
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False, **options)
    ).scalars().all()

    stale = session.execute(
        select(Job.id, Job.organization_id, Job.task_name)
        .where(
            Job.status == JobStatus.queued,
            or_(Job.enqueued_at.is_(None), Job.enqueued_at < now - requeue_after),
        )
        .order_by(Job.enqueued_at.nulls_first())
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .execution_options(**options)
    ).all()
    if stale:
        session.execute(
            update(Job)
            .where(Job.id.in_([row.id for row in stale]))
            .values(enqueued_at=now, updated_at=now)
            .execution_options(synchronize_session=False, **options)
        )
    for row in stale:
        enqueue_on_commit(session, row.task_name, job_id=str(row.id), org_id=str(row.organization_id))
    if reclaimed or failed or stale:
        log.info("jobs.swept", requeued=len(stale), failed=len(failed), reclaimed=len(reclaimed))
    return SweepReport(requeued=[row.id for row in stale], failed=list(failed), reclaimed=list(reclaimed))
