"""Maintenance pipeline: the sweeps that make sure no intent is ever lost."""

import datetime as dt

from shared.db import unit_of_work
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.services.jobs import sweep_stale_jobs
from shared.services.organizations import expire_trials
from shared.settings import get_settings


@celery_app.task(name=names.SWEEP_STALE_JOBS)
def sweep_stale_jobs_task(org_id: str | None = None) -> None:
    """Re-enqueue jobs left queued, reclaim jobs whose worker died, fail jobs out of attempts.

    Trigger: beat, every 30 s. Idempotency: rows are taken with SKIP LOCKED and each
    step is a conditional UPDATE, so overlapping runs do nothing twice; a job published
    twice is claimed once. Retry: none; the next beat runs it again. Side effects:
    job rows change status; re-enqueued tasks are published after commit.
    """
    settings = get_settings()
    with unit_of_work() as session:
        sweep_stale_jobs(session, requeue_after=dt.timedelta(seconds=settings.job_requeue_after_seconds))


@celery_app.task(name=names.EXPIRE_TRIALS)
def expire_trials_task(org_id: str | None = None) -> None:
    """Move organizations whose 14-day trial has ended to `expired` (sends refused until a plan is chosen).

    Trigger: beat, every TRIAL_EXPIRY_INTERVAL_SECONDS. Idempotency: a conditional UPDATE
    from `trialing` only, so a second run (or a redelivery) expires nothing more and audits
    nothing twice. Retry: none; the next beat runs it again. Side effects: organizations rows,
    one `organizations.trial_expired` audit event each.
    """
    with unit_of_work() as session:
        expire_trials(session)
