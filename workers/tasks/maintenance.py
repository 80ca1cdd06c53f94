"""Maintenance pipeline: the sweeps that make sure no intent is ever lost."""

import datetime as dt

from shared import event_backlog
from shared.db import unit_of_work
from shared.models.base import utcnow
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.queueing.publish import publish_now
from shared.services import assignment, send_outcomes, sending, webhooks
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


@celery_app.task(name=names.SWEEP_MESSAGES)
def sweep_messages_task(org_id: str | None = None) -> None:
    """Make sure no webhook payload, outbound message or waiting conversation is forgotten.

    Trigger: beat, every SWEEP_INTERVAL_SECONDS. Re-arms the dispatcher of every number with a due
    queued message (a lost publish, a dead dispatcher whose lease lapsed); settles messages left
    `sending` past SEND_LEASE_SECONDS (their worker died: queued again if their request never left,
    else `unknown`, settled by status webhooks, never resent); hands waiting conversations to
    agents with room; publishes a webhooks drain when payloads wait unprocessed (a drain lost with its
    flag set). Idempotency: a
    re-published send or payload is claimed once; the conditional UPDATEs change nothing twice.
    Retry: none; the next beat runs it again.
    """
    settings = get_settings()
    now = utcnow()
    with unit_of_work() as session:
        send_outcomes.settle_stuck_sends(session, older_than=now - dt.timedelta(seconds=settings.send_lease_seconds))
        due_numbers = sending.due_numbers(session)
        waiting_orgs = assignment.organizations_waiting(session)
        webhooks_waiting = webhooks.oldest_waiting_since(
            session, older_than=now - dt.timedelta(seconds=settings.job_requeue_after_seconds))
    if webhooks_waiting:  # a drain lost with its flag set: one more drain is harmless, it queues on the lock
        publish_now(names.DRAIN_WEBHOOKS, org_id=None)
    sending.arm(due_numbers)  # a number whose dispatcher holds its lease is left to it
    for waiting_org_id in waiting_orgs:
        publish_now(names.ASSIGN_WAITING, org_id=str(waiting_org_id))


@celery_app.task(name=names.REPLAY_EVENT_LOG)
def replay_event_log_task(org_id: str | None = None) -> None:
    """Write the event-log lines kept in PostgreSQL while the event store was down into the event store.

    Trigger: beat, every SWEEP_INTERVAL_SECONDS. Idempotency: every line carries its event id (the store
    skips one it holds already) and rows are taken FOR UPDATE SKIP LOCKED, deleted once written, so
    overlapping runs never write the same rows. Retry: none; a store still down ends the run quietly and the
    next beat tries again. Side effects: event-log documents; event_backlog rows deleted.
    """
    event_backlog.replay()
