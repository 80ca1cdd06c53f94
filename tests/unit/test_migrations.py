"""Models and migrations agree, and the migrations run both ways on an empty database."""

import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from shared.models import Base
from tests.conftest import RUN_ID, alembic_config


def test_autogenerate_finds_no_difference_between_models_and_migrations(migrated):
    engine = create_engine(migrated.database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_upgrade_downgrade_upgrade_on_an_empty_database(service_urls):
    admin = make_url(service_urls["DATABASE_URL"])
    name = f"pytake_migrations_{RUN_ID}"
    plain_admin = admin.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        assert {"organizations", "users", "jobs"} <= set(inspect(engine).get_table_names())
        command.downgrade(config, "base")
        engine.dispose()
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        with engine.connect() as connection:
            enums = connection.exec_driver_sql("SELECT typname FROM pg_type WHERE typtype = 'e'").scalars().all()
        assert enums == []
        command.upgrade(config, "head")
        engine.dispose()
        assert "jobs" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
        with psycopg.connect(plain_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
