"""A job that does nothing but its bookkeeping: what the intent-record machinery costs on its own."""

from workers.base import job_task

NOOP_JOB = "maintenance.bench_noop_job"


@job_task(NOOP_JOB)
def noop_job(session, job, progress):
    """Trigger: bench/job_pipeline.py. Idempotency: the job claim. Retry: none. Side effects: none."""
    return {"ok": True}
