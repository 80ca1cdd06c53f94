"""Per-request context: X-Request-ID (accepted or generated, always returned), logging fields,
the body-size limit, the JSON-only rule for request bodies, and no NUL character in any input."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from shared.errors import InvalidInputError
from shared.logs import bind_context, clear_context
from shared.settings import get_settings
from web.views import view_attribute

REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Endpoints that take raw bodies signed by their sender (webhooks) opt out of the JSON rule by name.
RAW_BODY_ENDPOINTS: set[str] = set()


def _begin() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    clear_context()
    bind_context(
        request_id=g.request_id,
        method=request.method,
        path=request.path,
        client_ip=request.remote_addr,
        user_agent=(request.user_agent.string or None),
    )
    upload = view_attribute(current_app, request.endpoint, request.method, "accepts_upload")
    limit = getattr(get_settings(), upload) if upload else current_app.config.get("MAX_CONTENT_LENGTH")
    if upload:
        request.max_content_length = limit
    if limit and request.content_length and request.content_length > limit:
        # Refused before anything else reads (or authenticates) the body.
        raise RequestEntityTooLarge(f"The body is larger than {limit} bytes")


def _check_media_type() -> None:
    """After authentication: a caller who may not call the endpoint learns nothing about its body rules."""
    upload = view_attribute(current_app, request.endpoint, request.method, "accepts_upload")
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    if request.method in BODY_METHODS and has_body and request.endpoint not in RAW_BODY_ENDPOINTS:
        if upload and request.mimetype != "multipart/form-data":
            raise UnsupportedMediaType("Send the file as multipart/form-data")
        if not upload and not request.is_json:
            raise UnsupportedMediaType(
                f"Send the body as application/json (got {request.mimetype or 'no Content-Type'})"
            )


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _refuse_nul() -> None:
    """No field of this API takes a NUL character, and PostgreSQL's text cannot store one: refused here, once,
    with a 422 (a NUL reaching a statement was a 500). The bytes are looked at first, so a body without a
    `\\u0000` escape costs a substring search."""
    query = request.query_string
    if b"\x00" in query or b"%00" in query:
        raise InvalidInputError("A query parameter holds a NUL character (%00)", details={"location": "query"})
    if request.endpoint in RAW_BODY_ENDPOINTS:  # Meta's signed bytes: never refused for their content
        return
    if request.is_json and b"\\u0000" in request.get_data(cache=True) and _holds_nul(request.get_json(silent=True)):
        raise InvalidInputError("A text in the body holds a NUL character (\\u0000)", details={"location": "json"})
    if request.mimetype == "multipart/form-data" and _holds_nul(request.form.to_dict()):
        raise InvalidInputError("A form field holds a NUL character", details={"location": "form"})


def _end(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = getattr(g, "request_id", "")
    return response


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_end)
    app.teardown_request(lambda _exc: clear_context())


def init_body_rules(app: Flask) -> None:
    """Registered after authentication (web/auth.py), so it runs after it."""
    app.before_request(_check_media_type)
    app.before_request(_refuse_nul)
