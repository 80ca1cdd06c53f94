"""`<queue>.ping` for every queue: /readyz?deep=1 sends one through each and waits for the answer.

Trigger: the deep readiness probe. Idempotency: none needed (no side effects).
Retry: never; an unanswered ping is the signal. Side effects: none; the result
is kept briefly in the result backend so the prober can read it.
"""

import os
import socket

from shared.queueing.celery_app import celery_app
from shared.queueing.names import PING_TASKS


def _make_ping(name: str):
    @celery_app.task(name=name, ignore_result=False, acks_late=False)
    def ping(org_id: str | None = None) -> dict:
        return {"task": name, "hostname": ping.request.hostname or socket.gethostname(), "pid": os.getpid()}

    return ping


PINGS = {name: _make_ping(name) for name in PING_TASKS}
