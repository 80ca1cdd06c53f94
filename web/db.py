"""The request's unit of work: one session, opened on first use, committed once before the response.

A response below 400 commits (and so publishes the tasks the request enqueued);
anything else rolls back. A commit that fails turns the response into a 500 in the
one error shape, so a client never sees success for work that was not saved.
"""

from __future__ import annotations

import structlog
from flask import Flask, Response, g
from sqlalchemy.orm import Session

from shared.db import new_autocommit_session, new_session
from web.errors import make_error

log = structlog.get_logger(__name__)


def get_session(*, single_statement: bool = False) -> Session:
    """The request's session. `single_statement=True` (asked before anything else opens it): a request
    that writes with one statement gets an autocommit session (shared.db.new_autocommit_session)."""
    if "db_session" not in g:
        g.db_session = new_autocommit_session() if single_statement else new_session()
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
