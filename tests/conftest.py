"""The test harness: real PostgreSQL, Redis and MongoDB wire protocol, a throwaway database per run.

Where the stores come from:
- TEST_DATABASE_URL (an admin URL: the suite creates `pytake_test_<random>` on that server,
  migrates it once and drops it at the end) and TEST_REDIS_URL (a Redis database the suite
  may flush): the machine's servers, as in CI;
- otherwise the embedded engines `make run` uses, with their data under var/test/.
- MongoDB: TEST_MONGODB_URL, or the embedded nx-27017 stand-in; a per-run database, dropped after.

With PYTAKE_REQUIRE_SERVICES=1 a configured service that cannot be reached fails the run
instead of silently falling back.

Unit tests run inside a SAVEPOINT per test (rolled back); integration tests commit for
real so worker processes see their rows, and clean their tables afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from alembic import command
from alembic.config import Config
from pymongo import MongoClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from shared import db, embedded, events, redis_client
from shared.queueing import publish
from shared.settings import PROJECT_ROOT, Settings, use_settings
from tests import factories

REQUIRE_SERVICES = os.environ.get("PYTAKE_REQUIRE_SERVICES") == "1"
TEST_DATA_DIR = PROJECT_ROOT / "var" / "test"
RUN_ID = uuid.uuid4().hex[:10]


def _reachable_postgres(url: str) -> str | None:
    try:
        with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False), connect_timeout=3):
            return None
    except Exception as exc:
        return str(exc)


def _reachable_redis(url: str) -> str | None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        return None
    except Exception as exc:
        return str(exc)


def _resolve(variable: str, check) -> str | None:
    url = os.environ.get(variable)
    if url:
        problem = check(url)
        if problem is None:
            return url
        if REQUIRE_SERVICES:
            pytest.exit(f"{variable}={url} is not reachable and PYTAKE_REQUIRE_SERVICES=1: {problem}", returncode=3)
        print(f"\n{variable} unreachable ({problem}); using the embedded engine")
    return None


def _admin_to_test_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def service_urls():
    """{DATABASE_URL (admin), REDIS_URL, MONGODB_URL}: configured servers or embedded engines."""
    with contextlib.ExitStack() as stack:
        configured = {
            "DATABASE_URL": _resolve("TEST_DATABASE_URL", _reachable_postgres),
            "REDIS_URL": _resolve("TEST_REDIS_URL", _reachable_redis),
            "MONGODB_URL": os.environ.get("TEST_MONGODB_URL") or None,
        }
        TEST_DATA_DIR.mkdir(parents=True, exist_ok=True)
        environ = {key: value for key, value in configured.items() if value}
        urls = stack.enter_context(embedded.embedded_engines(TEST_DATA_DIR, environ))
        yield urls


@pytest.fixture(scope="session")
def settings(service_urls) -> Settings:
    """Settings pointing at this run's throwaway database, Redis db and Mongo database."""
    admin_url = service_urls["DATABASE_URL"]
    database = f"pytake_test_{RUN_ID}"
    plain_admin = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    redis.Redis.from_url(service_urls["REDIS_URL"]).flushdb()

    test_settings = Settings(
        environment="test",
        database_url=_admin_to_test_url(admin_url, database),
        redis_url=service_urls["REDIS_URL"],
        mongodb_url=service_urls["MONGODB_URL"],
        mongodb_database=f"pytake_test_{RUN_ID}",
        data_dir=TEST_DATA_DIR,
        log_level="WARNING",
        password_hash_rounds=4,
        bot_burst_seconds=0.0,  # in-process bot steps run at once; the burst window has its own tests
    )
    use_settings(test_settings)
    yield test_settings

    reset_clients()
    with contextlib.suppress(Exception), MongoClient(service_urls["MONGODB_URL"], serverSelectionTimeoutMS=2000) as mongo:
        mongo.drop_database(test_settings.mongodb_database)
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def reset_clients() -> None:
    """Forget every cached connection, so the next use follows the current settings."""
    db.dispose_engine()
    events.close_client()
    redis_client.close_client()


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["skip_logging_config"] = True
    return config


@pytest.fixture(scope="session")
def migrated(settings) -> Settings:
    command.upgrade(alembic_config(settings.database_url), "head")
    return settings


@pytest.fixture
def db_session(migrated):
    """The test's session, inside a transaction rolled back at the end.

    Every other unit of work during the test (a web request, a task body) gets its own
    session on the same connection, in a SAVEPOINT of its own: it sees what the test wrote,
    its commit or rollback touches only its own work, and nothing outlives the test.
    """
    engine = create_engine(migrated.database_url)
    connection = engine.connect()
    outer = connection.begin()

    def savepoint_session() -> Session:
        return Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)

    session = savepoint_session()
    db.set_session_factory(savepoint_session)
    try:
        yield session
    finally:
        db.set_session_factory(None)
        session.close()
        outer.rollback()
        connection.close()
        engine.dispose()
        db.dispose_engine()


@pytest.fixture
def published():
    """Every task publish, as (task_name, kwargs), instead of sending to the broker (a delay is not recorded)."""
    sent: list[tuple[str, dict]] = []
    publish.set_publisher(lambda name, kwargs, countdown=None: sent.append((name, kwargs)))
    yield sent
    publish.set_publisher(None)


@pytest.fixture
def app(migrated):
    from web import create_app

    application = create_app(migrated)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app, db_session, published):
    redis.Redis.from_url(app_settings(app).redis_url).flushdb()  # throttles and revocations start clean
    return app.test_client()


def app_settings(app) -> Settings:
    from shared.settings import get_settings

    return get_settings()


@pytest.fixture
def organization(db_session):
    """An organization on the unlimited plan, so tests meet limits only where they mean to."""
    return factories.make_org(db_session, name="Acme Ltd", plan_code="enterprise")


@pytest.fixture
def login(app):
    """login(user) → request headers carrying a fresh access token for that user."""

    def headers_for(user, **extra: str) -> dict[str, str]:
        from web.auth import issue_tokens

        with app.app_context():
            tokens = issue_tokens(user)
        return {"Authorization": f"Bearer {tokens['access_token']}", **extra}

    return headers_for


@pytest.fixture
def admin(db_session, organization):
    return factories.make_user(db_session, organization, role="org_admin")


@pytest.fixture
def admin_headers(admin, login):
    return login(admin)


def project_file(*parts: str) -> Path:
    return PROJECT_ROOT.joinpath(*parts)
