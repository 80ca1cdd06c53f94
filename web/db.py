"""The request's unit of work: one session, opened on first use, committed once before the response.

A response below 400 commits (and so publishes the tasks the request enqueued);
anything else rolls back. A commit that fails turns the response into a 500 in the
one error shape, so a client never sees success for work that was not saved.

A view marked `@writes_once` changes the database with one statement at most: its request runs on an
autocommit session (shared.db.new_autocommit_session), each statement durable as it runs, and the
commit only runs the after-commit hooks. It saves the BEGIN and COMMIT round trips of the hottest
requests (the send request).
"""

from __future__ import annotations

import structlog
from typing import Callable

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy.orm import Session

from shared.db import new_autocommit_session, new_session
from web.errors import make_error
from web.views import view_attribute

log = structlog.get_logger(__name__)


def writes_once(view: Callable) -> Callable:
    """Mark a view whose request changes the database with one statement at most (see the module's doc)."""
    view.writes_once = True
    return view


def get_session(*, single_statement: bool = False) -> Session:
    """The request's session. `single_statement=True` (asked before anything else opens it), or a view marked
    `@writes_once`: an autocommit session."""
    if "db_session" not in g:
        autocommit = single_statement or (has_request_context() and view_attribute(
            current_app, request.endpoint, request.method, "writes_once", False))
        g.db_session = new_autocommit_session() if autocommit else new_session()
    return g.db_session


def _finish_unit_of_work(response: Response) -> Response:
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return response
    try:
        if response.status_code < 400:
            session.commit()
        else:
            session.rollback()
    except Exception:
        log.exception("web.commit_failed")
        session.rollback()
        response = make_error(500, "internal_error", "The change could not be saved; nothing was changed")
    finally:
        session.close()
    return response


def _close_on_teardown(_: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def init_app(app: Flask) -> None:
    app.after_request(_finish_unit_of_work)
    app.teardown_request(_close_on_teardown)
