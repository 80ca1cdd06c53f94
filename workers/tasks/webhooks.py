"""Webhooks pipeline: apply what Meta told us, the waiting payloads drained in arrival order; inbound media; assignment."""

import io
import time
import uuid

import structlog

from shared.backoff import backoff_seconds
from shared.db import unit_of_work
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.services import assignment, inbound, numbers, webhooks
from shared.storage import get_storage
from shared.whatsapp.errors import ErrorAction, GraphAPIError, GraphTransportError, MediaUrlExpiredError
from workers.base import pipeline_task

log = structlog.get_logger(__name__)


DRAIN_RUN_SECONDS = 20.0  # then hand over to a fresh drain, so one task never holds a child for minutes


@pipeline_task(names.DRAIN_WEBHOOKS)
def drain(self, org_id: str | None = None) -> None:
    """Apply every waiting webhook intake row, oldest first, in batches.

    Trigger: the intake, after its commit, when it set the drain-pending flag (one publish per idle
    period, not per request); itself (hand-over after DRAIN_RUN_SECONDS); the message sweep, when
    rows wait past JOB_REQUEUE_AFTER_SECONDS (a drain lost with its flag set). Idempotency: each
    batch claims its rows (received -> processed) in the transaction that applies them, under the
    one drain lock, so two drains never apply a row twice; messages are unique by wamid, the archive
    by row id. The flag is cleared before the first read, so a row committed later arms a new drain.
    Retry: transient errors only, jittered backoff, 5 times, then the sweep; a row that fails
    otherwise is marked failed alone (the rest of its batch goes on). Side effects: contacts,
    conversations, messages, consent, templates and numbers; fetch_media, keyword replies and
    assignments published after commit; the raw payloads archived to the event log.
    """
    webhooks.clear_drain_flag()
    started = time.monotonic()
    while True:
        with unit_of_work() as session:
            taken = webhooks.drain_batch(session)
        if not taken:  # nothing waited: a row committed from now on arms a drain of its own
            return
        if time.monotonic() - started > DRAIN_RUN_SECONDS:
            webhooks.arm_drain()
            return


@pipeline_task(names.PROCESS_WEBHOOK)
def process_event(self, event_id: str, org_id: str | None = None) -> None:
    """Process one webhook intake row (and the rows that arrived before it and still wait).

    Trigger: none any more (the intake arms `webhooks.drain`); kept so a task published by an
    earlier version and still in a broker is applied. Idempotency, retry and side effects: as
    `webhooks.drain`.
    """
    with unit_of_work() as session:
        webhooks.process_event(session, event_id=event_id)


@celery_app.task(name=names.FETCH_MEDIA, bind=True, max_retries=8)
def fetch_media(self, message_id: str, org_id: str) -> None:
    """Download an inbound message's media from Meta into our storage.

    Trigger: an inbound image/video/audio/document/sticker (after the message is committed, so the
    message never waits for its file). Idempotency: a message whose media is stored already is
    skipped; the storage key is the message id. Retry: on its own, with backoff (8 times), since
    Meta keeps inbound media for 7 days; then the message records why it has no file. A refused
    token (190) is recorded as awaiting new credentials: a new access token fetches it again.
    Side effects: one file in storage; the message's media_key or media_error.
    """
    with unit_of_work() as session:
        found = inbound.message_for_media(session, message_id=message_id)
        if found is None:
            return
        message, number = found
        media_id, client = message.media_id, numbers.graph_client(number)
    try:
        info = client.get_media_url(media_id)
        content = client.download_media(info.url)
    except (GraphAPIError, GraphTransportError) as exc:
        retryable = isinstance(exc, GraphTransportError) or exc.retryable or isinstance(exc, MediaUrlExpiredError)
        if retryable and self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries, base=5.0, cap=600.0))
        with unit_of_work() as session:  # a refused token (190): fetched again when the number gets a new one
            inbound.record_media_error(session, message_id=message_id, error=str(exc), awaits_credentials=(
                isinstance(exc, GraphAPIError) and exc.action is ErrorAction.INVALID_TOKEN))
        return
    key = f"media/{org_id}/{message_id}"
    get_storage().save(key, io.BytesIO(content))
    with unit_of_work() as session:
        inbound.record_media(session, message_id=message_id, key=key, mime_type=info.mime_type)


@celery_app.task(name=names.ASSIGN_WAITING)
def assign_waiting(org_id: str) -> None:
    """Hand waiting conversations to agents who came online or freed capacity.

    Trigger: an agent going online, a conversation closed, unassigned or transferred, and the
    message sweep. Idempotency: only unassigned conversations are taken, under the organization's
    assignment lock. Retry: none needed; the sweep runs it again. Side effects: conversation rows.
    """
    with unit_of_work() as session:
        assignment.assign_waiting(session, org_id=uuid.UUID(org_id))
