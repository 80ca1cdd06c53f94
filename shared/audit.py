"""Audit trail: who did what, when, from where, appended to the MongoDB event log (while it is down, to the
PostgreSQL backlog the maintenance sweep replays: shared/event_backlog.py).

`audit_on_commit` records the entry only if the transaction that made the change commits
(an audit of something that was rolled back would be a lie), batched with the transaction's other
entries (shared/aftercommit.py); `audit_now` is for events
that change no row, such as a refused sign-in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Sequence

import structlog
from sqlalchemy.orm import Session

from shared import aftercommit, event_backlog, events
from shared.group_commit import GroupCommit
from shared.logs import current_context

log = structlog.get_logger(__name__)
_KIND = "audit"


def origin() -> dict[str, Any]:
    """Where the work in hand came from: the request's (or task's) client address, agent and id."""
    context = current_context()
    return {"ip": context.get("client_ip"), "user_agent": context.get("user_agent"),
            "request_id": context.get("request_id")}


def _entry(
    *, org_id, action: str, subject_type: str, subject_id, actor_id, data: dict[str, Any] | None = None,
    came_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "event": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "actor": str(actor_id) if actor_id else None,
        "data": {**(data or {}), **(origin() if came_from is None else came_from)},
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
    occurred_at: dt.datetime | None = None,
    came_from: dict[str, Any] | None = None,
) -> None:
    """`event_id` makes the entry idempotent: a redelivered task appends it once. `occurred_at` and
    `came_from` record an earlier step written later (its time, and the request it came from)."""
    entry = _entry(org_id=org_id, action=action, subject_type=subject_type, subject_id=subject_id,
                   actor_id=actor_id, data=data, came_from=came_from)
    if event_id is not None:
        entry["event_id"] = event_id
    if occurred_at is not None:
        entry["occurred_at"] = occurred_at
    aftercommit.defer(session, _KIND, entry)


def audit_now(**kwargs: Any) -> None:
    _append(_entry(**kwargs))


def _append(entry: dict[str, Any]) -> None:
    event_backlog.write([entry])


def _append_all(entries: list[dict[str, Any]]) -> None:
    """A transaction's entries in one write (a send's steps, a payload's messages), not one round trip each;
    the entries of transactions committed at the same moment in other threads go in the same write."""
    try:
        _appends.submit(entries)
    except Exception:
        log.exception("audit.append_failed", entries=len(entries), actions=sorted({e["event"] for e in entries}))


def _write_together(batches: Sequence[list[dict[str, Any]]]) -> list[None]:
    event_backlog.write([entry for entries in batches for entry in entries])  # the store, or the backlog
    return [None] * len(batches)


_appends: GroupCommit[list[dict[str, Any]], None] = GroupCommit(_write_together)


aftercommit.register(_KIND, _append_all)


def audit_trail(*, org_id: uuid.UUID | str, subject_type: str, subject_id: uuid.UUID | str) -> list[dict[str, Any]]:
    return events.events_for(org_id=org_id, subject_type=subject_type, subject_id=subject_id)
