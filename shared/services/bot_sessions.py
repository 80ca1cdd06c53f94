"""Ending a conversation's bot session from outside the bots pool: an agent takes the conversation, or
it is closed. Kept apart from bot_runtime so conversations and assignment can call it without a cycle."""

from __future__ import annotations

import uuid

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from shared.models import LIVE_BOT_SESSION_STATUSES, BotEndReason, BotSession, BotSessionStatus
from shared.models.base import utcnow

STEPPING = (BotSessionStatus.active, BotSessionStatus.waiting)  # the bot still has the conversation


def end_live(session: Session, *, conversation_id: uuid.UUID, reason: BotEndReason,
             statuses: tuple[BotSessionStatus, ...] = LIVE_BOT_SESSION_STATUSES) -> int:
    """End the conversation's live session in `statuses`; a reason it already has (handoff) is kept."""
    return session.execute(update(BotSession).where(
        BotSession.conversation_id == conversation_id, BotSession.status.in_(statuses),
    ).values(status=BotSessionStatus.ended, ended_at=utcnow(), due_at=None, pending_call=None,
             end_reason=func.coalesce(BotSession.end_reason, reason.value))
        .execution_options(synchronize_session=False)).rowcount
