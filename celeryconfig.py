"""Celery settings, read by name by shared/queueing/celery_app.py.

Delivery is chosen for idempotent tasks (DESIGN §4.6): acks_late with
reject_on_worker_lost, so a killed worker's task is redelivered; the intent row's
claim counts attempts and fails it past the cap. Prefetch is set per pool in the
Procfile. Business state lives in our tables; results are kept only for pings.
"""

from kombu import Exchange, Queue

from shared.queueing.names import (
    EXPIRE_TRIALS,
    QUEUES,
    REPLAY_EVENT_LOG,
    SWEEP_BOTS,
    SWEEP_CAMPAIGNS,
    SWEEP_MESSAGES,
    SWEEP_STALE_JOBS,
    queue_for,
)
from shared.settings import get_settings

_settings = get_settings()

broker_url = _settings.broker
result_backend = _settings.redis_url
broker_connection_retry_on_startup = True
broker_transport_options = {
    # A task not acked within this window is redelivered; it must exceed the hard time limit.
    "visibility_timeout": _settings.task_time_limit_seconds * 2,
}
result_expires = 600

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES)
task_default_queue = "maintenance"


def route_by_prefix(name, args, kwargs, options, task=None, **kw):
    return {"queue": queue_for(name), "routing_key": queue_for(name)}


task_routes = (route_by_prefix,)

task_acks_late = True
task_reject_on_worker_lost = True
task_ignore_result = True
task_soft_time_limit = _settings.task_soft_time_limit_seconds
task_time_limit = _settings.task_time_limit_seconds
worker_prefetch_multiplier = 1
worker_hijack_root_logger = False
worker_max_tasks_per_child = 1000

# Flower sees tasks through the workers' events (received, started, succeeded...). No "sent" event from
# publishers: it doubles the cost of every publish, and the webhook intake publishes on each request.
worker_send_task_events = True
task_send_sent_event = False
task_track_started = True

imports = (
    "workers.tasks.pings",
    "workers.tasks.maintenance",
    "workers.tasks.contacts",
    "workers.tasks.webhooks",
    "workers.tasks.whatsapp",
    "workers.tasks.sends",
    "workers.tasks.bots",
    "workers.tasks.campaigns",
    *_settings.extra_task_modules,
)

beat_schedule = {
    "sweep-stale-jobs": {
        "task": SWEEP_STALE_JOBS,
        "schedule": _settings.sweep_interval_seconds,
        "options": {"expires": _settings.sweep_interval_seconds},
    },
    "sweep-messages": {
        "task": SWEEP_MESSAGES,
        "schedule": _settings.sweep_interval_seconds,
        "options": {"expires": _settings.sweep_interval_seconds},
    },
    "replay-event-log": {
        "task": REPLAY_EVENT_LOG,
        "schedule": _settings.sweep_interval_seconds,
        "options": {"expires": _settings.sweep_interval_seconds},
    },
    "bots-due": {
        "task": SWEEP_BOTS,
        "schedule": _settings.bot_due_interval_seconds,
        "options": {"expires": _settings.bot_due_interval_seconds},
    },
    "campaigns-due": {
        "task": SWEEP_CAMPAIGNS,
        "schedule": _settings.campaign_sweep_interval_seconds,
        "options": {"expires": _settings.campaign_sweep_interval_seconds},
    },
    "expire-trials": {
        "task": EXPIRE_TRIALS,
        "schedule": _settings.trial_expiry_interval_seconds,
        "options": {"expires": _settings.trial_expiry_interval_seconds},
    },
}
