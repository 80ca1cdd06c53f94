"""The shape of a job-backed task: claim the intent, do the work in one transaction, record the outcome.

    @job_task(names.CONTACTS_IMPORT)
    def import_contacts(session, job, progress):
        ...
        return {"created": 10}

- Claim: a conditional UPDATE (shared.services.jobs.claim_job). A duplicate publish or
  a sweep's re-enqueue finds the job taken and returns; a redelivery of the same
  message after its worker died takes the claim over. Attempts are capped.
- The work and `finish_job` commit together, so a worker killed midway leaves no
  half-done work behind: the redelivered task starts over from a clean state.
- `progress(pct, message)` commits on its own so clients see it while the job runs;
  it raises JobCancelled when a client cancelled the job, which stops the work.
- DomainError fails the job with its code; TransientError is retried with backoff
  until the attempts run out; anything else fails the job as an internal error.
"""

from __future__ import annotations

from typing import Any, Callable

import structlog
import redis.exceptions
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerError
from pymongo.errors import AutoReconnect
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from shared.backoff import backoff_seconds

from shared.db import unit_of_work
from shared.errors import DomainError
from shared.models.jobs import Job
from shared.queueing.celery_app import celery_app
from shared.services import jobs as job_service
from shared.settings import get_settings

log = structlog.get_logger(__name__)


class TransientError(Exception):
    """A failure worth retrying later (timeouts, 5xx, throttling)."""


class JobCancelled(Exception):
    """The job was cancelled while it ran."""


# Weather, not bugs: a database restarting or deadlocked, Redis, the broker or MongoDB out of reach.
TRANSIENT_ERRORS = (TransientError, OperationalError, InterfaceError, redis.exceptions.ConnectionError,
                    redis.exceptions.TimeoutError, BrokerError, AutoReconnect)

Progress = Callable[[int, str | None], None]
JobBody = Callable[[Session, Job, Progress], dict[str, Any] | None]


def _lease_seconds() -> int:
    return get_settings().task_time_limit_seconds + 60


def _progress_reporter(job_id: str) -> Progress:
    def report(progress: int, message: str | None = None) -> None:
        with unit_of_work() as session:
            running = job_service.report_progress(
                session, job_id=job_id, progress=progress, message=message, lease_seconds=_lease_seconds()
            )
        if not running:
            raise JobCancelled(job_id)

    return report


def run_job(task: Task, body: JobBody, job_id: str) -> None:
    with unit_of_work() as session:
        job = job_service.claim_job(session, job_id=job_id, task_id=task.request.id, lease_seconds=_lease_seconds())
    if job is None:
        return
    try:
        with unit_of_work() as session:
            result = body(session, job, _progress_reporter(job_id))
            if not job_service.finish_job(session, job_id=job_id, result=result):
                session.rollback()  # cancelled meanwhile: its work must not land
    except JobCancelled:
        log.info("jobs.stopped_cancelled", job_id=job_id)
    except DomainError as exc:
        with unit_of_work() as session:
            job_service.fail_job(session, job_id=job_id, code=exc.code, message=exc.message)
    except SoftTimeLimitExceeded:
        with unit_of_work() as session:
            job_service.fail_job(session, job_id=job_id, code="timed_out", message="the job ran past its time limit")
    except TransientError as exc:
        if job.attempts >= job.max_attempts:
            with unit_of_work() as session:
                job_service.fail_job(session, job_id=job_id, code="transient_error", message=str(exc))
            return
        with unit_of_work() as session:
            job_service.release_job(session, job_id=job_id)
        raise task.retry(exc=exc, countdown=backoff_seconds(job.attempts, base=5.0))
    except Exception as exc:
        log.exception("jobs.crashed", job_id=job_id)
        with unit_of_work() as session:
            job_service.fail_job(session, job_id=job_id, code="internal_error", message=f"{type(exc).__name__}: {exc}")


def job_task(name: str, **options: Any) -> Callable[[JobBody], Task]:
    """Register `body` as the Celery task `name`, run through `run_job`."""

    def decorator(body: JobBody) -> Task:
        def run(self: Task, job_id: str, org_id: str) -> None:
            run_job(self, body, job_id)

        run.__doc__ = body.__doc__
        run.__module__ = body.__module__
        task = celery_app.task(name=name, bind=True, max_retries=None, **options)(run)
        task.body = body  # unit tests call the body directly, with their own session
        return task

    return decorator


def pipeline_task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """A task that is not a job: transient errors (TRANSIENT_ERRORS) retry with jittered exponential
    backoff, 5 times by default; anything else is a bug and fails the task at once, logged."""
    defaults: dict[str, Any] = {
        "bind": True, "autoretry_for": TRANSIENT_ERRORS, "retry_backoff": 2, "retry_backoff_max": 60,
        "retry_jitter": True, "max_retries": 5,
    }
    return celery_app.task(name=name, **{**defaults, **options})
