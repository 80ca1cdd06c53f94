"""Bots pipeline: a conversation's bot session advanced one step at a time (shared/services/bot_runtime.py)."""

import datetime as dt

import structlog

from shared.db import unit_of_work
from shared.models.base import utcnow
from shared.queueing import names
from shared.queueing.celery_app import celery_app
from shared.queueing.publish import publish_now
from shared.services import bot_calls, bot_runtime
from shared.settings import get_settings
from workers.base import pipeline_task

log = structlog.get_logger(__name__)


@pipeline_task(names.BOT_STEP)
def step(self, org_id: str, conversation_id: str) -> str:
    """Feed the conversation's bot the customer's newest inbound messages not applied yet (one step per burst).

    Trigger: the inbound pipeline, after the commit that stored the messages, once per conversation
    and batch that its bot answers; itself, delayed, while the customer is still typing (a burst); an
    outside call's result when the customer wrote meanwhile; the bots sweep, for a publish that was
    lost. Idempotency: the session's last applied message sequence, read and moved under the
    conversation's row lock in the transaction that performs the step (a redelivery finds nothing
    new); bot replies are also keyed per inbound message and action. Retry: transient errors, jittered
    backoff, 5 times (the transaction rolled back, nothing half-applied). Side effects: the bot
    session, bot messages queued (urgent traffic), tags, consent and contact fields, closing, hand-off
    to an agent or the queue, an outside call published.
    """
    with unit_of_work() as session:
        return bot_runtime.step_conversation(session, org_id=org_id, conversation_id=conversation_id)


@pipeline_task(names.BOT_CALL)
def call(self, org_id: str, conversation_id: str, session_id: str, call_id: int) -> str:
    """Make a session's outside call (an HTTP API or the organization's AI endpoint), then apply its result.

    Trigger: a step whose session now waits on the call, after its commit. Idempotency: the call is
    read from the session only while the session still waits on `call_id`, and its result applied
    only if it still does (a redelivered task after the result was applied finds the wait moved on).
    A worker killed between the call and the result makes the call again on redelivery (an outside
    call is at least once). No database transaction is open during the call. Retry: transient
    database errors, as any pipeline task; the call's own failures are results (the failure or
    fallback branch), never retries. Lost entirely, the bots sweep takes the failure branch once the
    call's timeout and BOT_CALL_GRACE_SECONDS have passed.
    """
    with unit_of_work() as session:
        found = bot_runtime.pending_call(session, session_id=session_id, call_id=call_id)
    if found is None:
        return "stale"
    call_org_id, action = found
    if action["type"] == "call_api":
        event = bot_calls.call_api(action)
    else:
        with unit_of_work() as session:  # read the settings, then the call with no transaction open
            event = bot_calls.call_ai(session, org_id=call_org_id, action=action)
    with unit_of_work() as session:
        outcome = bot_runtime.apply_call_result(session, org_id=org_id, conversation_id=conversation_id,
                                                session_id=session_id, event=event)
    log.info("bots.call", session_id=session_id, call_id=call_id, kind=action["type"], ok=event.get("ok"),
             error=event.get("error"), outcome=outcome)
    return outcome


@pipeline_task(names.BOT_FIRE_DUE)
def fire_due(self, org_id: str, conversation_id: str, session_id: str) -> str:
    """Act on a session whose due time passed: its question's timeout branch, a lost call's failure branch,
    or the end of a session whose customer went silent.

    Trigger: the bots sweep (beat). Idempotency: under the conversation's lock, only while the session's
    `due_at` has passed and its wait is the one that was due (the interpreter ignores a timeout for a
    wait it has left): a timeout is taken once, however often it is published. Retry: transient errors.
    """
    with unit_of_work() as session:
        return bot_runtime.fire_due(session, org_id=org_id, conversation_id=conversation_id, session_id=session_id)


@celery_app.task(name=names.SWEEP_BOTS)
def sweep_due(org_id: str | None = None) -> None:
    """Publish `fire_due` for every session past its due time, and a step for every conversation whose
    bot has a message no step took (its publish lost).

    Trigger: beat, every BOT_DUE_INTERVAL_SECONDS. Idempotency: both tasks change nothing twice.
    Retry: none; the next beat runs it again.
    """
    settings = get_settings()
    grace = max(10.0, settings.bot_burst_seconds * 4, settings.sweep_interval_seconds)
    with unit_of_work() as session:
        due = bot_runtime.due_sessions(session)
        lost = bot_runtime.lost_steps(session, older_than=utcnow() - dt.timedelta(seconds=grace))
    for kwargs in due:
        publish_now(names.BOT_FIRE_DUE, **kwargs)
    for kwargs in lost:
        publish_now(names.BOT_STEP, **kwargs)
    if due or lost:
        log.info("bots.sweep", due=len(due), lost_steps=len(lost))
