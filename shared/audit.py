"""Audit trail: who did what, when, from where, appended to the MongoDB event log.

`audit_on_commit` records the entry only if the transaction that made the change commits
(an audit of something that was rolled back would be a lie); `audit_now` is for events
that change no row, such as a refused sign-in.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from shared import events
from shared.logs import current_context

log = structlog.get_logger(__name__)
_PENDING = "pytake_pending_audit"


def _entry(
    *, org_id, action: str, subject_type: str, subject_id, actor_id, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    context = current_context()
    return {
        "org_id": org_id,
        "event": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "actor": str(actor_id) if actor_id else None,
        "data": {
            **(data or {}),
            "ip": context.get("client_ip"),
            "user_agent": context.get("user_agent"),
            "request_id": context.get("request_id"),
        },
    }


def audit_on_commit(
    session: Session,
    *,
    org_id: uuid.UUID | str | None,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID | str,
    actor_id: uuid.UUID | str | None,
    data: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> None:
    """`event_id` makes the entry idempotent: a redelivered task appends it once."""
    entry = _entry(
        org_id=org_id, action=action, subject_type=subject_type, subject_id=subject_id, actor_id=actor_id, data=data
    )
    if event_id is not None:
        entry["event_id"] = event_id
    session.info.setdefault(_PENDING, []).append(entry)


def audit_now(**kwargs: Any) -> None:
    _append(_entry(**kwargs))


def _append(entry: dict[str, Any]) -> None:
    try:
        events.append_event(**entry)
    except Exception:  # the change itself stands; a lost audit line is logged loudly
        log.exception("audit.append_failed", action=entry["event"], subject_id=str(entry["subject_id"]))


@event.listens_for(Session, "after_commit")
def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # SQLAlchemy fires after_commit when a SAVEPOINT is released too: wait for the real commit
    for entry in session.info.pop(_PENDING, []):
        _append(entry)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def audit_trail(*, org_id: uuid.UUID | str, subject_type: str, subject_id: uuid.UUID | str) -> list[dict[str, Any]]:
    return events.events_for(org_id=org_id, subject_type=subject_type, subject_id=subject_id)
