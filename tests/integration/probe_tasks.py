"""A job task that only the integration workers load (PYTAKE_EXTRA_TASK_MODULES).

It records each run in Redis and can hold for a while, so a test can kill its
worker in the middle and then count how many times it really completed.
"""

import json
import os
import time

from shared.redis_client import get_redis
from workers.base import job_task

PROBE_JOB = "maintenance.probe_job"


@job_task(PROBE_JOB)
def probe_job(session, job, progress):
    """Trigger: tests. Idempotency: the job claim. Retry: redelivery only. Side effects: Redis counters."""
    redis = get_redis()
    redis.rpush(f"probe:{job.id}:runs", json.dumps({"pid": os.getpid(), "attempt": job.attempts}))
    progress(50, "holding")
    deadline = time.monotonic() + float(job.params.get("hold_seconds", 0))
    while time.monotonic() < deadline:
        time.sleep(0.05)
    redis.incr(f"probe:{job.id}:completions")
    return {"pid": os.getpid(), "attempt": job.attempts}
