"""Per-request context: X-Request-ID (accepted or generated, always returned), logging fields,
the body-size limit and the JSON-only rule for request bodies."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from shared.logs import bind_context, clear_context

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Endpoints that take something other than JSON (signed webhooks, uploads) opt out by name.
NON_JSON_ENDPOINTS: set[str] = set()


def _begin() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    clear_context()
    bind_context(
        request_id=g.request_id,
        method=request.method,
        path=request.path,
        client_ip=request.remote_addr,
        user_agent=(request.user_agent.string or None),
    )
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and request.content_length and request.content_length > limit:
        # Refused before anything else reads (or authenticates) the body.
        raise RequestEntityTooLarge(f"The body is larger than {limit} bytes")
    if (
        request.method in BODY_METHODS
        and request.endpoint not in NON_JSON_ENDPOINTS
        and (request.content_length or request.headers.get("Transfer-Encoding"))
        and not request.is_json
    ):
        raise UnsupportedMediaType(
            f"Send the body as application/json (got {request.mimetype or 'no Content-Type'})"
        )


def _end(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = getattr(g, "request_id", "")
    return response


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_end)
    app.teardown_request(lambda _exc: clear_context())
