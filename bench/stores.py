"""A benchmark's own stores: a database created and migrated for the run, a Redis database index, and the
cleanup that removes both (and the run's event-log entries) whatever happened."""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass

import psycopg
import redis
from sqlalchemy.engine import make_url

from shared.settings import PROJECT_ROOT, Settings, use_settings


@dataclass
class Stores:
    db_name: str
    database_url: str
    plain_server: str  # the PostgreSQL server, for CREATE and DROP DATABASE
    redis_url: str
    created: bool = False


def isolate(prefix: str, redis_db: int) -> Stores:
    """Point this process (and the processes it starts, through os.environ) at the run's own stores. The settings
    are read once per process (celeryconfig too): this runs before anything reads them."""
    base = Settings.from_env()
    db_name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    server_url = make_url(base.database_url)
    stores = Stores(db_name=db_name,
                    database_url=server_url.set(database=db_name).render_as_string(hide_password=False),
                    plain_server=server_url.set(drivername="postgresql").render_as_string(hide_password=False),
                    redis_url=make_url(base.redis_url).set(database=str(redis_db)).render_as_string(hide_password=False))
    os.environ.update(DATABASE_URL=stores.database_url, REDIS_URL=stores.redis_url, LOG_LEVEL="WARNING")
    if os.environ.get("BROKER_URL", "").startswith("redis"):
        os.environ["BROKER_URL"] = make_url(os.environ["BROKER_URL"]).set(
            database=str(redis_db)).render_as_string(hide_password=False)
    settings = Settings.from_env()
    use_settings(settings)
    from shared.logs import configure_logging

    configure_logging(settings)
    return stores


def create_database(stores: Stores) -> None:
    from alembic import command
    from alembic.config import Config

    with psycopg.connect(stores.plain_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{stores.db_name}"')
    stores.created = True
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes.update(database_url=stores.database_url, skip_logging_config=True)
    command.upgrade(config, "head")


def remove(stores: Stores, org_id: uuid.UUID | None) -> None:
    """Drop the database, delete the organization's event-log entries, flush the Redis database; say what failed."""
    from shared import db

    db.dispose_engine()
    if stores.created:
        try:
            with psycopg.connect(stores.plain_server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{stores.db_name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - say it, keep cleaning
            print(f"cleanup: database {stores.db_name} was not dropped: {exc}", file=sys.stderr)
    if org_id is not None:
        try:
            from shared import events

            events.get_database()[events.EVENTS].delete_many({"org_id": str(org_id)})
            events.close_client()
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup: event-log entries of organization {org_id} were not deleted: {exc}", file=sys.stderr)
    try:
        broker = redis.Redis.from_url(stores.redis_url)
        broker.flushdb()
        broker.close()
    except redis.RedisError as exc:
        print(f"cleanup: Redis database {stores.redis_url.rsplit('/', 1)[-1]} was not flushed: {exc}", file=sys.stderr)
