"""One buffer for what must wait for the real commit: task publishes and event-log lines.

`defer(session, kind, item)` keeps `item` on the session; when the outermost transaction commits,
each kind's flusher receives its items as one list (one round trip per kind, not per item); a
rollback of the outermost transaction drops them. SQLAlchemy fires `after_commit` when a
SAVEPOINT is released too, so a release inside the transaction flushes nothing yet.
"""

from __future__ import annotations

from typing import Any, Callable

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

log = structlog.get_logger(__name__)
_BUFFER = "pytake_after_commit"

Flusher = Callable[[list[Any]], None]
_flushers: dict[str, Flusher] = {}


def register(kind: str, flusher: Flusher) -> None:
    _flushers[kind] = flusher


def defer(session: Session, kind: str, item: Any) -> None:
    if kind not in _flushers:
        raise KeyError(f"no flusher registered for {kind!r}")
    session.info.setdefault(_BUFFER, {}).setdefault(kind, []).append(item)


def snapshot(session: Session) -> dict[str, list[Any]]:
    """What is deferred so far, to `restore` if a SAVEPOINT taken now is rolled back."""
    return {kind: list(items) for kind, items in session.info.get(_BUFFER, {}).items()}


def restore(session: Session, saved: dict[str, list[Any]]) -> None:
    """Forget what was deferred since `snapshot`: a rolled-back SAVEPOINT's publishes and lines must not fire."""
    session.info[_BUFFER] = {kind: list(items) for kind, items in saved.items()}


@event.listens_for(Session, "after_commit")
def _flush(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for kind, items in session.info.pop(_BUFFER, {}).items():
        try:
            _flushers[kind](items)
        except Exception:  # the change is committed; each flusher has its own safety net (sweeps, logs)
            log.exception("aftercommit.flush_failed", kind=kind, items=len(items))


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous_transaction) -> None:
    # Only the outermost rollback drops them: a SAVEPOINT rolled back inside the transaction
    # (a get-or-create race, say) leaves the outer work standing.
    if previous_transaction.parent is None:
        session.info.pop(_BUFFER, None)
