"""What a campaign message's failure means for its recipient.

Meta's 131049 (its per-user marketing cap, "to maintain healthy ecosystem engagement") is not the
recipient's final answer: the recipient is tried once more a day later, if that is still within the
campaign's validity. Every other failure is final. Called wherever a message becomes `failed` (the
send's own answer, or a `failed` status webhook).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.models import Message

MARKETING_CAP = "131049"
RETRY_AFTER = dt.timedelta(hours=24)
MAX_ATTEMPTS = 2

_RETRY_LATER = text("""
UPDATE campaign_recipients r SET state = 'retry', next_attempt_at = :at, updated_at = now()
FROM campaigns c
WHERE r.campaign_id = :campaign_id AND r.message_id = :message_id AND r.state = 'queued'
  AND r.attempts < :max_attempts AND c.id = r.campaign_id
  AND :at < c.started_at + make_interval(hours => c.validity_hours)
""")


def note_failed(session: Session, message: Message) -> None:
    if message.campaign_id is None or message.error_code != MARKETING_CAP or message.failed_at is None:
        return
    session.execute(_RETRY_LATER, {"at": message.failed_at + RETRY_AFTER, "campaign_id": message.campaign_id,
                                   "message_id": message.id, "max_attempts": MAX_ATTEMPTS})
