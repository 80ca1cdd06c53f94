"""Publish tasks only after the database transaction that wrote their intent commits.

`enqueue_on_commit(session, name, **kwargs)` buffers the publish on the session
(shared/aftercommit.py); the real commit sends it, a rollback drops it. A commit that succeeds but
whose publish is lost (broker down, process killed) leaves the intent `queued`,
and the maintenance sweep re-enqueues it: work is delayed, never lost.
"""

from __future__ import annotations

import json
import structlog
from typing import Any, Callable

from sqlalchemy.orm import Session

from shared import aftercommit
from shared.queueing.names import queue_for

log = structlog.get_logger(__name__)
_KIND = "publish"

# (task name, kwargs, countdown: seconds to wait, or None)
Publisher = Callable[[str, dict[str, Any], float | None], None]


def _send_with_celery(task_name: str, kwargs: dict[str, Any], countdown: float | None = None) -> None:
    from shared.queueing.celery_app import celery_app

    celery_app.send_task(task_name, kwargs=kwargs, queue=queue_for(task_name), countdown=countdown)


_publisher: Publisher = _send_with_celery


def set_publisher(publisher: Publisher | None) -> None:
    """Swap how publishes leave the process (tests record them); None restores Celery."""
    global _publisher
    _publisher = publisher or _send_with_celery


def enqueue_on_commit(session: Session, task_name: str, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue `task_name(**kwargs)` to be published once `session` commits (run `countdown` seconds later).

    Arguments must be JSON primitives and ids (DESIGN §4.3); `org_id` is required so
    the task can bind its tenant.
    """
    queue_for(task_name)  # fail fast on a name no queue routes
    if "org_id" not in kwargs:
        raise ValueError(f"{task_name}: tasks always carry org_id")
    payload = json.loads(json.dumps(kwargs, default=str))  # ids become strings; anything else fails here
    aftercommit.defer(session, _KIND, (task_name, payload, countdown))


def publish_now(task_name: str, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Publish outside any transaction (beat fan-outs, sweeps re-enqueueing committed intents)."""
    _publisher(task_name, json.loads(json.dumps(kwargs, default=str)), countdown or None)


def _publish_all(pending: list[tuple[str, dict[str, Any], float | None]]) -> None:
    for task_name, kwargs, countdown in pending:
        try:
            _publisher(task_name, kwargs, countdown or None)
        except Exception:  # the intent is committed; the sweep will publish it again
            log.exception("queueing.publish_failed", task=task_name)


aftercommit.register(_KIND, _publish_all)
