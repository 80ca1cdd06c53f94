"""Structured logging: JSON lines in production, readable key=value lines in development.

Log one line per state transition, named `<pipeline>.<event>` with key=value fields:

    log = structlog.get_logger(__name__)
    log.info("jobs.claimed", job_id=job.id, attempt=job.attempts)

request_id / task_id / task_name / org_id are bound per request (web) and per task
(workers) with `bind_context`, and appear on every line logged meanwhile,
including lines from libraries that use the standard `logging` module.
"""

from __future__ import annotations

import logging
import sys
import uuid

import structlog

from shared.settings import Settings

def _plain_ids(_logger, _method, event_dict):
    """UUIDs and other ids print as their text, not their repr."""
    for key, value in event_dict.items():
        if isinstance(value, uuid.UUID):
            event_dict[key] = str(value)
    return event_dict


_SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _plain_ids,
]


def configure_logging(settings: Settings) -> None:
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.json_logs
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def bind_context(**values: object) -> None:
    structlog.contextvars.bind_contextvars(**{k: str(v) for k, v in values.items() if v is not None})


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()


def current_context() -> dict[str, object]:
    """What is bound for this request or task (request_id, client_ip, org_id, ...)."""
    return structlog.contextvars.get_contextvars()
