"""Campaigns pipeline: a running campaign's drip (shared/services/campaign_dispatch.py) and beat's starts."""

import datetime as dt

import structlog
from sqlalchemy.orm import Session

from shared.db import unit_of_work
from shared.models import Job
from shared.models.base import utcnow
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.queueing.publish import publish_now
from shared.services import campaign_dispatch, campaign_stats, campaigns
from shared.settings import get_settings
from workers.base import Progress, job_task, pipeline_task

log = structlog.get_logger(__name__)


@pipeline_task(names.DISPATCH_CAMPAIGN)
def dispatch(self, org_id: str, campaign_id: str, chain: str | None = None) -> str:
    """One turn of a running campaign's drip, then the next turn, published CAMPAIGN_TICK_SECONDS later.

    Trigger: start and resume (after their commit), itself while the campaign runs, the campaigns sweep
    for a drip that went quiet (its worker died, its publish was lost). Idempotency: the turn locks the
    campaign row (a second chain's turn gives way) and claims ledger rows FOR UPDATE SKIP LOCKED; a row
    and its message are written in one transaction, so a redelivered turn finds the row queued and
    sends nobody twice; one chain of turns per campaign (a newer chain, from a resume or the sweep,
    ends the older one at its next turn).
    Retry: transient errors, jittered backoff (the turn rolled back whole). Side effects: ledger rows,
    conversations opened, campaign messages queued (bulk traffic), the number's dispatcher armed; a
    pause with an alert when the organization, the template or a number stops it.
    """
    settings = get_settings()
    if not campaigns.holds_chain(campaign_id, chain):
        return "replaced"
    with unit_of_work() as session:
        turn = campaign_dispatch.run_turn(session, campaign_id=campaign_id)
    if turn.again:
        publish_now(names.DISPATCH_CAMPAIGN, countdown=0 if turn.outcome == "resolved" else settings.campaign_tick_seconds,
                    org_id=org_id, campaign_id=campaign_id, chain=chain)
    if turn.queued or turn.skipped or turn.outcome != "running":
        log.info("campaigns.turn", campaign_id=campaign_id, outcome=turn.outcome, queued=turn.queued,
                 skipped=turn.skipped)
    return turn.outcome


@celery_app.task(name=names.SWEEP_CAMPAIGNS)
def sweep(org_id: str | None = None) -> None:
    """Start scheduled campaigns whose time came, and resume drips that went quiet.

    Trigger: beat, every CAMPAIGN_SWEEP_INTERVAL_SECONDS. Idempotency: a start is a conditional status
    change (scheduled → running) under the campaign's row lock; a resumed drip joins or replaces the
    old chain (see dispatch). Retry: none; the next beat runs it again.
    """
    settings = get_settings()
    with unit_of_work() as session:
        due = campaigns.due_to_start(session)
    started = []
    for campaign_id, campaign_org_id in due:
        with unit_of_work() as session:
            outcome = campaigns.start_scheduled(session, org_id=campaign_org_id, campaign_id=campaign_id)
        started.append((campaign_id, outcome))
    with unit_of_work() as session:
        quiet = campaigns.quiet_drips(session, older_than=utcnow() - dt.timedelta(seconds=settings.campaign_stale_seconds))
    for campaign_id, campaign_org_id in quiet:
        publish_now(names.DISPATCH_CAMPAIGN, org_id=str(campaign_org_id), campaign_id=str(campaign_id),
                    chain=campaigns.new_chain(campaign_id))
    if started or quiet:
        log.info("campaigns.sweep", started=[(str(c), o) for c, o in started], resumed=len(quiet))


@job_task(names.EXPORT_CAMPAIGN_RECIPIENTS)
def export_recipients(session: Session, job: Job, progress: Progress) -> dict:
    """A campaign's per-recipient list as CSV behind a signed link (shared/services/campaign_stats.py)."""
    return campaign_stats.export_recipients(session, job=job, progress=progress)
