"""Real worker and beat processes on the real broker, against this run's database.

Rows are committed for real (workers are other processes), and the tables are
emptied after each test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from shared import db
from shared.queueing.celery_app import celery_app
from shared.queueing.names import QUEUES
from shared.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def process_env(settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "MONGODB_URL": settings.mongodb_url,
        "MONGODB_DATABASE": settings.mongodb_database,
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTAKE_DATA_DIR": str(settings.data_dir),  # the same file storage as the test process
        "LOG_LEVEL": "INFO",
        # Tight loops so the sweep's effects show within a test.
        "SWEEP_INTERVAL_SECONDS": "1",
        "JOB_REQUEUE_AFTER_SECONDS": "2",
        "TRIAL_EXPIRY_INTERVAL_SECONDS": "1",
        "SEND_LEASE_SECONDS": "3",
        "BOT_DUE_INTERVAL_SECONDS": "1",
        "CAMPAIGN_SWEEP_INTERVAL_SECONDS": "1",
        # The tests' own HTTP servers and the sandbox's AI stand-in; 127.0.0.2 stays a refused private address.
        "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        "PYTAKE_EXTRA_TASK_MODULES": "tests.integration.probe_tasks",
    }
    env.update(extra)
    return env


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.log_path = name, log_dir / f"{name}.log"
        self.popen = subprocess.Popen(
            args, env=env, cwd=PROJECT_ROOT, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def broker(migrated):
    """The test process publishes to the suite's Redis, whatever was imported before."""
    celery_app.conf.update(broker_url=migrated.redis_url, result_backend=migrated.redis_url)
    return migrated


@pytest.fixture(scope="session")
def sandbox():
    """The Cloud API sandbox in a thread: the workers' Graph API for the whole run."""
    from sandbox.server import run_in_thread

    url, stop = run_in_thread({"template_review_seconds": 0.5})
    yield url
    stop()


@pytest.fixture(scope="session")
def worker(broker, sandbox, tmp_path_factory):
    """One prefork worker (a single child) consuming every queue, as `make run` would, merged."""
    log_dir = tmp_path_factory.mktemp("workers")
    process = Process(
        "worker",
        [
            sys.executable, "-m", "celery", "-A", "workers.app", "worker",
            "-Q", ",".join(QUEUES), "-n", "itest@%h", "--concurrency", "1", "--pool", "prefork",
            "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ],
        process_env(broker, WHATSAPP_API_BASE=sandbox),
        log_dir,
    )
    from shared.health import ping_pools

    try:
        wait_for(
            lambda: all(result.ok for result in ping_pools(timeout=2).values()),
            timeout=60,
            interval=0.5,
            what="the worker to answer pings",
        )
    except AssertionError:
        process.stop()
        raise AssertionError(f"worker never became ready:\n{process.log()[-4000:]}")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def beat(worker, broker, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("beat")
    process = Process(
        "beat",
        [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--schedule", str(log_dir / "schedule"),
         "--loglevel", "INFO"],
        process_env(broker),
        log_dir,
    )
    yield process
    process.stop()


@pytest.fixture
def committed(migrated):
    """Units of work commit for real; tables are emptied afterwards."""
    db.set_session_factory(None)
    db.dispose_engine()
    yield
    from sqlalchemy.exc import OperationalError

    for attempt in range(5):  # a worker may still be finishing the test's last task: its locks deadlock TRUNCATE
        try:
            with db.unit_of_work() as session:
                session.execute(text("TRUNCATE organizations CASCADE"))
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    db.dispose_engine()


@pytest.fixture
def web(migrated, broker, committed):
    """PyTake's web app on a real port, so the sandbox can post webhooks to it."""
    import threading

    from werkzeug.serving import make_server

    from web import create_app

    server = make_server("127.0.0.1", 0, create_app(migrated), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def own_stores(migrated, committed, app):
    """A database and a Redis of its own, for a test that runs platform processes of its own (web, pools, beat):
    the session's worker and beat sweep the suite's database and Redis, and would drain, send or settle this
    test's rows themselves. The test process reads and writes these stores too, until the end; dropped after.
    (After `app`, whose creation binds the suite's settings.)"""
    import contextlib
    import tempfile
    import uuid

    import psycopg
    from alembic import command
    from sqlalchemy.engine import make_url

    from shared.embedded import EmbeddedRedis
    from shared.settings import use_settings
    from tests.conftest import alembic_config, reset_clients

    admin = make_url(migrated.database_url)
    name = f"{admin.database}_own_{uuid.uuid4().hex[:6]}"
    plain = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with contextlib.ExitStack() as cleanup:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        cleanup.callback(drop)
        # Not under tmp_path: the server's system user must reach its directory (pytest makes it private).
        redis = EmbeddedRedis(name="REDIS_URL", data_dir=Path(cleanup.enter_context(
            tempfile.TemporaryDirectory(prefix="pytake-own-redis-"))))
        own = migrated.with_overrides(database_url=admin.set(database=name).render_as_string(hide_password=False),
                                      redis_url=redis.start())
        cleanup.callback(redis.stop)
        command.upgrade(alembic_config(own.database_url), "head")
        use_settings(own)
        reset_clients()
        cleanup.callback(lambda: (use_settings(migrated), reset_clients()))
        yield own


def answers(url: str) -> bool:
    """Whether `url` answers 200 now."""
    import requests

    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_platform(env: dict[str, str], log_dir: Path, name: str) -> tuple[str, list[Process]]:
    """A web process (gunicorn, as the Procfile starts it), one worker consuming every queue, and beat, all with
    `env`: (the web's URL, the processes), once the web answers. The caller stops them (Process.stop)."""
    from shared.embedded import free_port

    web_port = free_port()
    processes = [
        Process("web", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{web_port}",
                        "--no-control-socket", "wsgi:app"], env, log_dir),
        Process("worker", [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", ",".join(QUEUES),
                           "-n", f"{name}@%h", "--concurrency", "2", "--prefetch-multiplier", "1", "--without-gossip",
                           "--without-mingle", "--loglevel", "INFO"], env, log_dir),
        Process("beat", [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--schedule",
                         str(log_dir / "beat-schedule"), "--loglevel", "INFO"], env, log_dir),
    ]
    web = f"http://127.0.0.1:{web_port}"
    try:
        wait_for(lambda: answers(f"{web}/healthz"), timeout=60, interval=0.3, what="the web process")
    except AssertionError:
        for process in processes:
            process.stop()
        raise
    return web, processes
