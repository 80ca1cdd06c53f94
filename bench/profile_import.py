"""Profile the contact import body in-process: cProfile on the writer (main) thread and the parser thread.

    DATABASE_URL=... PYTAKE_DATA_DIR=/tmp/x .venv/bin/python bench/profile_import.py [rows]

Builds the same CSV as bench/contacts.py, runs contact_import.run_import twice on a database of its
own (first run: creates; second run: changes nothing), and prints CPU µs per row per thread and the
top functions of each thread by own time; with PostgreSQL on this machine, also the CPU its backend
spent per row (the import's other half, which wall-clock SQL timings blur when the machine is busy).
PROFILE_OFF=1 measures the CPU per row without cProfile (whose per-call overhead inflates call-heavy
code such as phone parsing several times over).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import sys
import tempfile
import threading
import time
import uuid

import psutil
import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.contacts import make_csv  # noqa: E402
from shared.settings import PROJECT_ROOT, Settings, use_settings  # noqa: E402

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
TOP = int(os.environ.get("PROFILE_TOP", "25"))
PROFILING = not os.environ.get("PROFILE_OFF")

profiles: dict[str, cProfile.Profile] = {}
cpu: dict[str, float] = {}
_run = threading.Thread.run


def _profiled_run(self):  # the parser thread gets a profile of its own
    profile = profiles.setdefault(self.name, cProfile.Profile())
    t0 = time.thread_time()
    if PROFILING:
        profile.enable()
    try:
        _run(self)
    finally:
        profile.disable()
        cpu[self.name] = cpu.get(self.name, 0.0) + time.thread_time() - t0


def backend_cpu(session) -> tuple[psutil.Process | None, float]:
    """The session's PostgreSQL backend and its CPU seconds so far; None when the server is not local."""
    from sqlalchemy import text

    try:
        process = psutil.Process(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        times = process.cpu_times()
    except psutil.Error:
        return None, 0.0
    return process, times.user + times.system


def main() -> None:
    base = Settings.from_env()
    admin = make_url(base.database_url)
    name = f"pytake_profile_{uuid.uuid4().hex[:8]}"
    plain = admin.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = base.with_overrides(database_url=admin.set(database=name).render_as_string(hide_password=False),
                                   log_level="WARNING")
    use_settings(settings)
    try:
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.attributes.update(database_url=settings.database_url, skip_logging_config=True)
        command.upgrade(config, "head")
        run()
    finally:
        from shared import db

        db.dispose_engine()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run() -> None:
    from shared.db import unit_of_work
    from shared.models import Job, Organization
    from shared.queueing.names import IMPORT_CONTACTS
    from shared.services import contact_import, jobs
    from workers.base import _progress_reporter

    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as handle:
        path = handle.name
    make_csv(path, ROWS, random.Random(7))
    with unit_of_work() as session:
        org = Organization(name="Profile", plan_code="enterprise")
        session.add(org)
        session.flush()
        with open(path, "rb") as data:
            record = contact_import.create_import(session, org_id=org.id, filename="p.csv", stream=data,
                                                  created_by_id=None)
        org_id, import_id = org.id, record.id
    os.unlink(path)
    columns = {"phone": "phone", "name": "name", "email": "email", "tags": "tags", "opt_in": "marketing_opt_in"}
    threading.Thread.run = _profiled_run
    sql_time: dict[str, float] = {}
    if os.environ.get("PROFILE_SQL"):
        from sqlalchemy import event

        from shared.db import get_engine

        @event.listens_for(get_engine(), "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):
            conn.info["t0"] = time.perf_counter()

        @event.listens_for(get_engine(), "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):
            key = " ".join(statement.split())[:70]
            sql_time[key] = sql_time.get(key, 0.0) + time.perf_counter() - conn.info["t0"]
    for attempt in ("first run", "second run"):
        profiles.clear()
        cpu.clear()
        with unit_of_work() as session:
            job, _ = jobs.create_job(session, org_id=org_id, kind="contacts.import", task_name=IMPORT_CONTACTS,
                                     params={"import_id": str(import_id), "columns": columns,
                                             "mode": "update_existing" if attempt == "second run" else "skip_existing"})
            job_id = job.id
        with unit_of_work() as session:  # claimed, as the worker does, so that progress() finds it running
            jobs.claim_job(session, job_id=job_id, task_id="profile", lease_seconds=600)
        with unit_of_work() as session:
            job = session.get(Job, job_id)
            main_profile = profiles.setdefault("MainThread", cProfile.Profile())
            backend, backend0 = backend_cpu(session)
            wall0, cpu0 = time.perf_counter(), time.thread_time()
            if PROFILING:
                main_profile.enable()
            # progress commits on a connection of its own, as in the worker (workers/base.py)
            result = contact_import.run_import(session, job=job, progress=_progress_reporter(str(job_id)))
            main_profile.disable()
            cpu["MainThread"] = time.thread_time() - cpu0
            wall = time.perf_counter() - wall0
            if backend is not None:
                cpu["postgres backend"] = backend_cpu(session)[1] - backend0
            commit0 = time.perf_counter()
        commit = time.perf_counter() - commit0
        print(f"\n== {attempt}: {ROWS} rows in {wall:.2f} s wall = {ROWS / wall:,.0f} rows/s, then commit {commit:.2f} s;"
              f" result {result}")
        for statement, seconds in sorted(sql_time.items(), key=lambda kv: -kv[1])[:12]:
            print(f"   SQL {seconds * 1e6 / ROWS:6.1f} µs/row  {statement}")
        sql_time.clear()
        for thread, seconds in cpu.items():
            print(f"   {thread}: {seconds * 1e6 / ROWS:.1f} CPU µs/row")
        if PROFILING and (attempt == "first run" or os.environ.get("PROFILE_BOTH")):
            for thread, profile in profiles.items():
                out = io.StringIO()
                stats = pstats.Stats(profile, stream=out)
                stats.sort_stats("tottime").print_stats(TOP)
                print(f"--- {thread}, by own time ---")
                print("\n".join(out.getvalue().splitlines()[:TOP + 12]))


if __name__ == "__main__":
    main()
