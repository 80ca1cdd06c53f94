"""Alerts: causes that need an admin's eye, raised by the pipelines, read and acknowledged through the API.

One open alert per cause (a template rejected, a number's quality downgraded, ...): the same cause again, while
the alert is open, counts an occurrence instead of a second alert, so a webhook Meta repeats, or one applied
twice, raises it once. A cause Meta timed (`seen_at`) counts only when it is newer than the last one seen: a
redelivery carries the same time, whatever its bytes, and an older one delivered late is no new occurrence
either (nor does it replace what the alert says). Each first raise also leaves an `alert.created` line in the
event log (shared/audit.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, or_, and_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.audit import audit_on_commit
from shared.db import get_owned
from shared.errors import NotFoundError
from shared.models import Alert
from shared.models.base import utcnow
from shared.services.conversations import decode_time_cursor, encode_time_cursor


class AlertNotFoundError(NotFoundError):
    code = "alert_not_found"


def raise_alert(session: Session, *, org_id: uuid.UUID, kind: str, subject_type: str, subject_id: uuid.UUID | str,
                message: str, data: dict[str, Any] | None = None, seen_at: dt.datetime | None = None) -> None:
    cause = f"{kind}:{subject_type}:{subject_id}"
    statement = insert(Alert).values(organization_id=org_id, kind=kind, cause=cause, subject_type=subject_type,
                                     subject_id=str(subject_id), message=message[:500], data=data or {},
                                     last_seen_at=seen_at or func.now())
    first = session.execute(statement.on_conflict_do_update(
        index_elements=[Alert.organization_id, Alert.cause], index_where=Alert.acknowledged_at.is_(None),
        set_={"occurrences": Alert.occurrences + 1, "last_seen_at": statement.excluded.last_seen_at,
              "data": statement.excluded.data, "message": statement.excluded.message},
        where=statement.excluded.last_seen_at > Alert.last_seen_at if seen_at is not None else None,
    ).returning(Alert.id, Alert.occurrences)).one_or_none()
    if first is not None and first.occurrences == 1:
        audit_on_commit(session, org_id=org_id, action="alert.created", subject_type=subject_type,
                        subject_id=subject_id, actor_id=None, data={"alert_id": str(first.id), "kind": kind,
                                                                    "message": message[:500]})


def list_alerts(session: Session, *, org_id: uuid.UUID, kind: str | None = None, acknowledged: bool | None = None,
                limit: int = 50, cursor: str | None = None) -> tuple[list[Alert], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Alert).where(Alert.organization_id == org_id)
    if kind:
        query = query.where(Alert.kind == kind)
    if acknowledged is not None:
        query = query.where(Alert.acknowledged_at.is_not(None) if acknowledged else Alert.acknowledged_at.is_(None))
    if cursor:
        stamp, ident = decode_time_cursor(cursor)
        query = query.where(or_(Alert.created_at < stamp, and_(Alert.created_at == stamp, Alert.id < ident)))
    rows = list(session.execute(query.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit + 1)).scalars())
    items = rows[:limit]
    next_cursor = encode_time_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return items, next_cursor


def acknowledge(session: Session, *, org_id: uuid.UUID, alert_id: uuid.UUID | str, user_id: uuid.UUID) -> Alert:
    """Seen by an admin; the same cause later opens a new alert. Acknowledging twice changes nothing."""
    alert = get_owned(session, Alert, alert_id, org_id=org_id, not_found=AlertNotFoundError)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by_id = utcnow(), user_id
        audit_on_commit(session, org_id=org_id, action="alert.acknowledged", subject_type=alert.subject_type,
                        subject_id=alert.subject_id, actor_id=user_id, data={"alert_id": str(alert.id)})
        session.flush()
    return alert
