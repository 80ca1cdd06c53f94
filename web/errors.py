"""Every error, whatever raised it, leaves as {code, message, details, request_id}.

- werkzeug HTTPExceptions (404, 405 with Allow, 413, 415, ...) and flask-smorest's
  `abort(status, message=..., errors=...)` (422 validation errors land in details.errors);
- DomainError from the services, mapped by its own `http_status` and `code`;
- the database unreachable (or a transaction it cancelled: a deadlock, a timeout): 503 with Retry-After,
  since the request rolled back and the same request can simply be tried again;
- anything unexpected: logged with its traceback, answered 500 without internals.
"""

from __future__ import annotations

import psycopg
import structlog
from flask import Flask, g, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from shared.errors import DomainError

log = structlog.get_logger(__name__)
INTERNAL_ERROR_MESSAGE = "Something went wrong on our side; quote the request_id if you report it"
DATABASE_UNAVAILABLE_MESSAGE = "The database cannot be reached right now and nothing was changed; try again shortly"
DATABASE_RETRY_AFTER_SECONDS = 5

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def make_error(status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None):
    body = {
        "code": code,
        "message": message,
        "details": details or {},
        "request_id": getattr(g, "request_id", None),
    }
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: HTTPException):
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    details: dict = dict(data.get("details") or {})
    errors = data.get("errors") or data.get("messages")
    if errors:
        # webargs nests errors by location ({"json": {...}}); keep that, it tells where to look.
        details["errors"] = errors
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
        details.setdefault("allowed_methods", sorted(error.valid_methods))
    if status == 429 and "Retry-After" in headers:
        details.setdefault("retry_after_seconds", int(headers["Retry-After"]))
    message = data.get("message") or error.description or error.name
    if status == 422 and not data.get("message"):
        message = "The request is well-formed but some values are invalid; see details.errors"
    code = data.get("code") or CODES.get(status, error.name.lower().replace(" ", "_"))
    return make_error(status, code, message, details, headers)


def handle_domain_error(error: DomainError):
    return make_error(error.http_status, error.code, error.message, error.details, error.headers)


def handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return error_response(error)
    if isinstance(error, (OperationalError, psycopg.OperationalError)):
        log.warning("web.database_unavailable", error=repr(getattr(error, "orig", None) or error))
        return make_error(503, "database_unavailable", DATABASE_UNAVAILABLE_MESSAGE,
                          {"retry_after_seconds": DATABASE_RETRY_AFTER_SECONDS},
                          {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
    log.exception("web.unhandled_error")
    return error_response(InternalServerError(INTERNAL_ERROR_MESSAGE))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected)
