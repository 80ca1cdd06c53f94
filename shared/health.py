"""Readiness checks: is each store reachable, and does each worker pool answer?"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import text

from shared import events
from shared.db import get_engine
from shared.queueing.names import QUEUES, ping_task, queue_for
from shared.redis_client import get_redis


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float
    error: str | None = None
    worker: str | None = None

    def as_dict(self) -> dict:
        data = {"status": "ok" if self.ok else "down", "latency_ms": round(self.latency_ms, 1)}
        if self.worker:
            data["worker"] = self.worker
        if self.error:
            data["error"] = self.error
        return data


def _timed(check: Callable[[], object]) -> CheckResult:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # a readiness probe reports every failure, whatever its type
        return CheckResult(False, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"[:300])
    return CheckResult(True, (time.perf_counter() - started) * 1000)


def _ping_postgres() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def check_stores() -> dict[str, CheckResult]:
    checks = {"postgres": _ping_postgres, "redis": lambda: get_redis().ping(), "mongodb": events.ping}
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = {name: pool.submit(_timed, check) for name, check in checks.items()}
        return {name: future.result() for name, future in futures.items()}


def ping_pools(timeout: float) -> dict[str, CheckResult]:
    """Round-trip `<queue>.ping` through every queue; a pool that does not answer in time is down."""
    from shared.queueing.celery_app import celery_app

    started = time.perf_counter()
    sent = {}
    for queue in QUEUES:
        try:
            sent[queue] = celery_app.send_task(
                ping_task(queue), kwargs={"org_id": None}, queue=queue_for(ping_task(queue)), expires=timeout
            )
        except Exception as exc:  # broker down: every pool is unreachable
            sent[queue] = exc
    results: dict[str, CheckResult] = {}
    deadline = started + timeout
    for queue, pending in sent.items():
        if isinstance(pending, Exception):
            results[queue] = CheckResult(False, 0.0, f"{type(pending).__name__}: {pending}"[:300])
            continue
        try:
            answer = pending.get(timeout=max(0.05, deadline - time.perf_counter()), propagate=True)
            worker = answer.get("hostname") if isinstance(answer, dict) else None
            results[queue] = CheckResult(True, (time.perf_counter() - started) * 1000, worker=worker)
        except Exception as exc:
            results[queue] = CheckResult(False, (time.perf_counter() - started) * 1000, f"no answer: {type(exc).__name__}")
        finally:
            pending.forget()
    return results
