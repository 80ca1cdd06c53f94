"""Maintenance pipeline: the sweeps that make sure no intent is ever lost."""

import datetime as dt

from shared.db import unit_of_work
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.services.jobs import sweep_stale_jobs
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
