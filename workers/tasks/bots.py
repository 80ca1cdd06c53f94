"""Bots pipeline: a conversation's bot session advanced one step at a time (shared/services/bot_runtime.py)."""

import structlog

from shared.db import unit_of_work
from shared.queueing import names
from shared.services import bot_runtime
from workers.base import pipeline_task

log = structlog.get_logger(__name__)


@pipeline_task(names.BOT_STEP)
def step(self, org_id: str, conversation_id: str) -> str:
    """Feed the conversation's bot the customer's newest inbound message not applied yet.

    Trigger: the inbound pipeline, after the commit that stored the messages, once per conversation
    and batch that its bot answers. Idempotency: the session's last applied message sequence, read and
    moved under the conversation's row lock in the transaction that performs the step (a redelivery
    finds nothing new); bot replies are also keyed per inbound message and action. Retry: transient
    errors, jittered backoff, 5 times (the transaction rolled back, nothing half-applied). Side effects:
    the bot session, bot messages queued (urgent traffic), tags and contact fields, closing, hand-off
    to an agent or the queue.
    """
    with unit_of_work() as session:
        return bot_runtime.step_conversation(session, org_id=org_id, conversation_id=conversation_id)
