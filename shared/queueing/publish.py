"""Publish tasks only after the database transaction that wrote their intent commits.

`enqueue_on_commit(session, name, **kwargs)` buffers the publish on the session;
the `after_commit` hook sends it, a rollback drops it. A commit that succeeds but
whose publish is lost (broker down, process killed) leaves the intent `queued`,
and the maintenance sweep re-enqueues it: work is delayed, never lost.
"""

from __future__ import annotations

import json
import structlog
from typing import Any, Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from shared.queueing.names import queue_for

log = structlog.get_logger(__name__)
_PENDING = "pytake_pending_publishes"

Publisher = Callable[[str, dict[str, Any]], None]


def _send_with_celery(task_name: str, kwargs: dict[str, Any]) -> None:
    from shared.queueing.celery_app import celery_app

    celery_app.send_task(task_name, kwargs=kwargs, queue=queue_for(task_name))


_publisher: Publisher = _send_with_celery


def set_publisher(publisher: Publisher | None) -> None:
    """Swap how publishes leave the process (tests record them); None restores Celery."""
    global _publisher
    _publisher = publisher or _send_with_celery


def enqueue_on_commit(session: Session, task_name: str, **kwargs: Any) -> None:
    """Queue `task_name(**kwargs)` to be published once `session` commits.

    Arguments must be JSON primitives and ids (DESIGN §4.3); `org_id` is required so
    the task can bind its tenant.
    """
    queue_for(task_name)  # fail fast on a name no queue routes
    if "org_id" not in kwargs:
        raise ValueError(f"{task_name}: tasks always carry org_id")
    payload = json.loads(json.dumps(kwargs, default=str))  # ids become strings; anything else fails here
    session.info.setdefault(_PENDING, []).append((task_name, payload))


def publish_now(task_name: str, **kwargs: Any) -> None:
    """Publish outside any transaction (beat fan-outs, sweeps re-enqueueing committed intents)."""
    _publisher(task_name, json.loads(json.dumps(kwargs, default=str)))


@event.listens_for(Session, "after_commit")
def _publish_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # SQLAlchemy fires after_commit when a SAVEPOINT is released too: wait for the real commit
    pending = session.info.pop(_PENDING, [])
    for task_name, kwargs in pending:
        try:
            _publisher(task_name, kwargs)
        except Exception:  # the intent is committed; the sweep will publish it again
            log.exception("queueing.publish_failed", task=task_name)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    # Only the outermost rollback drops them: a SAVEPOINT rolled back inside the
    # transaction (a get-or-create race, say) leaves the outer intent standing.
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
