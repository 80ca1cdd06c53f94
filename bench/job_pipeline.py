"""Benchmark: the intent-record pipeline end to end, and the jobs API's read latency.

Run with `make bench` (embedded stores unless URLs are set). It uses a database of its own,
dropped afterwards, and a real prefork worker (2 children) consuming every queue.

Prints:
- create + publish rate (jobs/s) for N jobs written in one request-sized transaction each,
- end-to-end rate: first create to last job `succeeded`, with a real worker,
- GET /api/v1/jobs/{id} and GET /api/v1/jobs?status=succeeded p50/p95 (in-process test client).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from shared.logs import configure_logging
from shared.queueing.names import QUEUES
from shared.settings import PROJECT_ROOT, Settings, use_settings

JOBS = int(os.environ.get("BENCH_JOBS", "2000"))
READS = int(os.environ.get("BENCH_READS", "500"))


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    base = Settings.from_env()
    admin = make_url(base.database_url)
    name = f"pytake_bench_{uuid.uuid4().hex[:8]}"
    plain_admin = admin.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = base.with_overrides(
        database_url=admin.set(database=name).render_as_string(hide_password=False), log_level="WARNING"
    )
    use_settings(settings)
    configure_logging(settings)
    worker = None
    try:
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.attributes.update(database_url=settings.database_url, skip_logging_config=True)
        command.upgrade(config, "head")

        env = {**os.environ, "DATABASE_URL": settings.database_url, "LOG_LEVEL": "WARNING",
               "PYTAKE_EXTRA_TASK_MODULES": "bench.noop_tasks", "PYTHONPATH": str(PROJECT_ROOT)}
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", ",".join(QUEUES),
             "-n", "bench@%h", "--concurrency", "2", "--prefetch-multiplier", "4", "--without-gossip",
             "--without-mingle", "--loglevel", "WARNING"],
            env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        run(settings)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        from shared import db

        db.dispose_engine()
        with psycopg.connect(plain_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(settings: Settings) -> None:
    from bench.noop_tasks import NOOP_JOB
    from shared.db import unit_of_work
    from shared.health import ping_pools
    from shared.models import Job, JobStatus, Organization, User
    from shared.permissions import Role
    from shared.services import jobs
    from web import create_app
    from web.auth import issue_tokens

    deadline = time.monotonic() + 60
    while not all(result.ok for result in ping_pools(timeout=2).values()):
        if time.monotonic() > deadline:
            raise SystemExit("the bench worker never answered")

    with unit_of_work() as session:
        org = Organization(name="Bench", plan_code="enterprise")
        session.add(org)
        session.flush()
        org_id = org.id
        reader = User(organization_id=org.id, email="bench-reader@example.com", password_hash="-",
                      full_name="Bench Reader", role=Role.viewer)
        session.add(reader)

    started = time.perf_counter()
    for _ in range(JOBS):
        with unit_of_work() as session:
            jobs.create_job(session, org_id=org_id, kind="bench", task_name=NOOP_JOB)
    created = time.perf_counter() - started

    def succeeded() -> int:
        with unit_of_work() as session:
            return session.execute(select(func.count()).where(Job.status == JobStatus.succeeded)).scalar_one()

    while succeeded() < JOBS:
        if time.perf_counter() - started > 600:
            raise SystemExit(f"only {succeeded()} of {JOBS} jobs succeeded in 600 s")
        time.sleep(0.1)
    end_to_end = time.perf_counter() - started

    app = create_app(settings)
    client = app.test_client()
    with app.app_context():
        token = issue_tokens(reader)["access_token"]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"  # the jobs API is for signed-in users
    with unit_of_work() as session:
        ids = session.execute(select(Job.id).limit(READS)).scalars().all()
    one, page = [], []
    for job_id in ids:
        t0 = time.perf_counter()
        assert client.get(f"/api/v1/jobs/{job_id}").status_code == 200
        one.append((time.perf_counter() - t0) * 1000)
    for _ in range(min(READS, 200)):
        t0 = time.perf_counter()
        assert client.get("/api/v1/jobs?status=succeeded&limit=50").status_code == 200
        page.append((time.perf_counter() - t0) * 1000)

    print(f"jobs                         {JOBS}")
    print(f"create+publish               {JOBS / created:8.0f} jobs/s   ({created:.2f} s, one transaction each)")
    print(f"end to end (create→succeeded){JOBS / end_to_end:8.0f} jobs/s   ({end_to_end:.2f} s, 1 worker × 2 children)")
    print(f"GET /jobs/{{id}}               p50 {statistics.median(one):6.2f} ms   p95 {percentile(one, 95):6.2f} ms")
    print(f"GET /jobs?status=…&limit=50  p50 {statistics.median(page):6.2f} ms   p95 {percentile(page, 95):6.2f} ms")


if __name__ == "__main__":
    main()
