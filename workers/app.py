"""The Celery entrypoint for every pool, beat and Flower: `celery -A workers.app ...`.

Adds what only worker processes need to the shared Celery app: task modules
(celeryconfig.imports), logging, per-task context, and dropping inherited
connections after fork.
"""

from celery.signals import setup_logging, task_postrun, task_prerun, worker_process_init

from shared import db, events, redis_client
from shared.logs import bind_context, clear_context, configure_logging
from shared.queueing.celery_app import celery_app
from shared.settings import get_settings

app = celery_app
app.Task.Request = "workers.acks:BrokerResetSafeRequest"  # a worker outlives a broker reset (workers/acks.py)


@setup_logging.connect
def _configure_logging(**_: object) -> None:
    configure_logging(get_settings())


@worker_process_init.connect
def _reset_connections_after_fork(**_: object) -> None:
    # A forked child must not reuse the parent's sockets (superset#10530).
    db.dispose_engine()
    events.close_client()
    redis_client.close_client()


@task_prerun.connect
def _bind_task_context(task_id=None, task=None, kwargs=None, **_: object) -> None:
    org_id = (kwargs or {}).get("org_id")
    bind_context(task_id=task_id, task_name=getattr(task, "name", None), org_id=org_id)
    task.request.pytake_org_token = db.bind_organization(org_id)


@task_postrun.connect
def _clear_task_context(task=None, **_: object) -> None:
    token = getattr(task.request, "pytake_org_token", None)
    if token is not None:
        db.reset_organization(token)
    clear_context()
