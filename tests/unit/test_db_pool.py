"""The connection pool: a connection the server dropped while it sat idle is replaced, not handed out."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import make_url

from shared import db


def _backend_pid() -> int:
    with db.get_engine().connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(settings, pid: int) -> None:
    plain = make_url(settings.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_killed_while_idle_is_replaced_on_checkout(migrated, monkeypatch):
    db.dispose_engine()
    try:
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every checkout counts as "idle for a while"
        dropped = _backend_pid()
        _terminate(migrated, dropped)  # a database restart, as the pooled connection sees it

        assert _backend_pid() != dropped  # the dead connection was pinged, dropped, and a live one opened
    finally:
        db.dispose_engine()


def test_a_connection_dropped_while_in_steady_use_fails_once_then_the_pool_recovers(migrated, monkeypatch):
    """Busy connections go out unchecked (no ping round trip): a restart costs one failed statement."""
    db.dispose_engine()
    try:
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
        dropped = _backend_pid()
        _terminate(migrated, dropped)

        with pytest.raises(DBAPIError) as failure:
            _backend_pid()
        assert failure.value.connection_invalidated
        assert _backend_pid() != dropped  # the pool was dropped with it: the next checkout is a new connection
    finally:
        db.dispose_engine()


def test_a_connection_pinged_after_idling_serves_an_autocommit_session(migrated, monkeypatch):
    """The webhook intake's session is autocommit; the idle ping must not leave its connection in a transaction."""
    db.dispose_engine()
    try:
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every checkout pings
        _backend_pid()  # the pool now holds a connection that sat idle
        session = db.new_autocommit_session()
        try:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
            assert db.driver_connection(session).autocommit
        finally:
            session.close()
    finally:
        db.dispose_engine()
