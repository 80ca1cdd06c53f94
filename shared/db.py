"""Database plumbing: one engine per process, one unit of work per request or task.

Services receive a session and never commit; whoever opened the unit of work
commits once at the end (the web request or the task). Forked worker children
call `dispose_engine()` so they never share a parent's connections.

Soft delete and tenancy are applied here, once, for every query on the models
that opt in (see `shared.models.base`):
- rows with `deleted_at` set are hidden unless the statement carries
  `execution_options(include_deleted=True)`;
- when an organization is bound (`bind_organization`), tenant rows of other
  organizations are hidden; `execution_options(all_tenants=True)` lifts that for
  system work such as sweeps.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
import uuid
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from shared.errors import DomainError, NotFoundError
from shared.models.base import SoftDeleteMixin, TenantMixin
from shared.settings import get_settings

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

PING_AFTER_IDLE_SECONDS = 2.0

_engine: Engine | None = None
_session_factory: Callable[[], Session] | None = None
_autocommit_factory: Callable[[], Session] | None = None
_test_factory: Callable[[], Session] | None = None
_hot: tuple[int, "psycopg.Connection"] | None = None  # (pid, connection): see hot_connection
_current_org: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar("pytake_org_id", default=None)


class DatabaseNotConfiguredError(RuntimeError):
    pass


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        url = get_settings().database_url
        if not url:
            raise DatabaseNotConfiguredError(
                "DATABASE_URL is not set: run through `make run` (which starts an embedded PostgreSQL) or set it"
            )
        _engine = create_engine(
            url,
            pool_size=5,
            max_overflow=5,
            connect_args={"connect_timeout": 5},
        )
        _ping_connections_left_idle(_engine)
    return _engine


def _ping_connections_left_idle(engine: Engine) -> None:
    """Check a pooled connection with a round trip only when it sat idle for a while.

    `pool_pre_ping` pings on every checkout: one more round trip for every request and task, on
    connections that were in use a moment ago. A connection back in the pool for less than
    PING_AFTER_IDLE_SECONDS goes out unchecked; if the server went away meanwhile, the first
    statement fails as a disconnect, SQLAlchemy drops the whole pool, and the request or task
    fails once (tasks retry transient errors).
    """

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _fresh(dbapi_connection, record) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        if time.monotonic() - record.info.get("checked_in_at", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            # The ping opened a transaction: end it, or an autocommit checkout (the webhook intake's
            # session) cannot switch the connection to autocommit and fails.
            dbapi_connection.rollback()
        except Exception as exc:  # any failure here means this connection is gone: the pool opens another
            raise DisconnectionError(str(exc)) from exc


def dispose_engine() -> None:
    """Drop this process's pool (after fork, or when settings change)."""
    global _engine, _session_factory, _autocommit_factory, _hot
    if _hot is not None and _hot[0] == os.getpid():
        _hot[1].close()
    _hot = None
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None
    _session_factory = None
    _autocommit_factory = None


def new_session() -> Session:
    global _session_factory
    if _session_factory is None:
        _session_factory = sessionmaker(bind=get_engine(), expire_on_commit=False)
    return _session_factory()


def new_autocommit_session() -> Session:
    """A session for a unit of work that is one statement: each statement commits as it runs.

    The driver sends no BEGIN and no COMMIT (two round trips of three for the webhook intake's one
    INSERT); `commit()` still runs the session's after-commit hooks, after the statement is durable.
    A test's factory (set_session_factory) replaces this one too: under test the statement joins the
    test's transaction like every other unit of work.
    """
    global _autocommit_factory
    if _autocommit_factory is None:
        engine = get_engine().execution_options(isolation_level="AUTOCOMMIT")
        _autocommit_factory = sessionmaker(bind=engine, expire_on_commit=False)
    return _autocommit_factory()


def driver_connection(session: Session) -> "psycopg.Connection":
    """The session's own psycopg connection, inside its transaction.

    For the few statements on a hot path (the send request, the webhook intake) where SQLAlchemy's per-statement Python
    (compile-cache lookup, the tenancy hook, result and ORM processing) costs several times the
    round trip itself. These statements name their organization explicitly: the tenancy hook does
    not see them.
    """
    return session.connection().connection.driver_connection


@contextlib.contextmanager
def hot_connection() -> Iterator["psycopg.Connection"]:
    """An autocommit psycopg connection for the one statement of the hottest path (the webhook intake's
    group commit), kept open between uses outside the pool: a pool checkout (its events, the isolation
    level set and reset) costs more than the statement. Callers take turns (shared.group_commit leads one
    batch at a time). A connection that fails is dropped, and the next use opens another.

    Under a test's session factory it is the test's connection, inside its transaction, like every unit
    of work.
    """
    global _hot
    if _test_factory is not None:
        session = _test_factory()
        try:
            yield driver_connection(session)
            session.commit()
        finally:
            session.close()
        return
    import psycopg

    if _hot is None or _hot[0] != os.getpid() or _hot[1].closed:
        url = get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
        _hot = (os.getpid(), psycopg.connect(url, autocommit=True, connect_timeout=5))
    connection = _hot[1]
    try:
        yield connection
    except psycopg.OperationalError:
        connection.close()
        _hot = None
        raise


def set_session_factory(factory: Callable[[], Session] | None) -> None:
    """Let tests bind every unit of work (autocommit ones and the hot connection too) to their SAVEPOINT session."""
    global _session_factory, _autocommit_factory, _test_factory
    _session_factory = factory
    _autocommit_factory = factory
    _test_factory = factory


@contextlib.contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back if it raises."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bind_organization(org_id: uuid.UUID | str | None) -> contextvars.Token:
    value = uuid.UUID(str(org_id)) if org_id is not None else None
    return _current_org.set(value)


def reset_organization(token: contextvars.Token) -> None:
    _current_org.reset(token)


def current_organization() -> uuid.UUID | None:
    return _current_org.get()


@event.listens_for(Session, "do_orm_execute")
def _apply_global_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    if not state.execution_options.get("include_deleted", False):
        state.statement = state.statement.options(
            with_loader_criteria(SoftDeleteMixin, lambda cls: cls.deleted_at.is_(None), include_aliases=True)
        )
    org_id = _current_org.get()
    if org_id is not None and not state.execution_options.get("all_tenants", False):
        state.statement = state.statement.options(
            with_loader_criteria(TenantMixin, lambda cls: cls.organization_id == org_id, include_aliases=True)
        )


def get_owned(session: Session, model: type[T], object_id: uuid.UUID | str, *, org_id: uuid.UUID | None,
              not_found: type[NotFoundError], for_update: bool = False) -> T:
    """The `model` row with this id inside organization `org_id` (None: no organization bound, system callers);
    `not_found` ("<what> <id> not found") for a malformed id, another tenant's row or no row at all."""
    what = not_found.code.removesuffix("_not_found").replace("_", " ")
    try:
        object_uuid = uuid.UUID(str(object_id))
    except ValueError as exc:
        raise not_found(f"{what} {object_id} not found") from exc
    query = select(model).where(model.id == object_uuid)
    if org_id is not None:
        query = query.where(model.organization_id == org_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = session.execute(query).scalar_one_or_none()
    if found is None:
        raise not_found(f"{what} {object_id} not found")
    return found


def ensure_name_free(session: Session, model: type, *, org_id: uuid.UUID, name: str, taken: type[DomainError],
                     what: str, except_id: uuid.UUID | None = None) -> None:
    """`taken` ("A <what> named ... already exists") when another `model` row of the organization has `name`."""
    existing = session.execute(
        select(model.id).where(model.organization_id == org_id, model.name == name)
    ).scalar_one_or_none()
    if existing is not None and existing != except_id:
        raise taken(f"A {what} named {name!r} already exists", details={"field": "name"})
