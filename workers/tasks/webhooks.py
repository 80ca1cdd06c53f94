"""Webhooks pipeline: apply what Meta told us, one stored payload at a time."""

import structlog

from shared.db import unit_of_work
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.services import webhooks
from shared.whatsapp.payloads import WebhookPayloadError

log = structlog.get_logger(__name__)


@celery_app.task(name=names.PROCESS_WEBHOOK, bind=True, max_retries=5)
def process_event(self, event_id: str, org_id: str | None = None) -> None:
    """Process one webhook intake row.

    Trigger: POST /api/v1/webhooks/whatsapp (after commit). Idempotency: the row is claimed
    with a conditional UPDATE and marked processed in the same transaction as its effects; a
    repeated task finds it processed and does nothing; the event-log archive is keyed by the
    row id. Retry: transient database errors retry with backoff (5 times); a payload that
    cannot be parsed fails the row with the reason. Side effects: templates and numbers
    updated, number sync jobs created, the raw payload archived to MongoDB.
    """
    try:
        with unit_of_work() as session:
            webhooks.process_event(session, event_id=event_id)
    except WebhookPayloadError as exc:
        with unit_of_work() as session:
            webhooks.fail_event(session, event_id=event_id, error=str(exc))
        log.warning("webhooks.unparseable", event_id=event_id, error=str(exc))
    except Exception as exc:
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries))
