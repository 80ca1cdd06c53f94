"""The webhook intake's POST, served ahead of Flask: the platform's hottest request, kept to its work.

Meta posts every message and status here. Flask's request machinery (the request context, the
app's hooks, flask-smorest's wrapper) cost more CPU than verifying and storing the body, so this
WSGI layer answers `POST /api/v1/webhooks/whatsapp` itself: the body is read once, handed to
`shared.services.webhooks.receive_webhook`, and the answer leaves in the API's one error shape
with its X-Request-ID. Anything unusual (no Content-Length, a body over the limit) goes on to the
Flask view in web/api/webhooks.py, which answers it the long way; every other request goes to
Flask untouched. The view stays the documented one (/docs) and answers the same.
"""

from __future__ import annotations

import json
import uuid
from typing import Callable, Iterable

import structlog
from sqlalchemy.orm import Session

from shared.db import new_autocommit_session
from shared.logs import bind_context, clear_context
from shared.services import webhooks
from web.errors import INTERNAL_ERROR_MESSAGE
from web.request_context import REQUEST_ID_HEADER, VALID_REQUEST_ID

log = structlog.get_logger(__name__)

SIGNATURE_REFUSED = ("invalid_signature", "The X-Hub-Signature-256 header does not match the body")
_INTERNAL = ("internal_error", INTERNAL_ERROR_MESSAGE)
_STATUS_LINES = {200: "200 OK", 401: "401 UNAUTHORIZED", 500: "500 INTERNAL SERVER ERROR"}

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class WebhookIntake:
    def __init__(self, app: WSGIApp, *, path: str, max_bytes: int | None):
        self.app, self.path, self.max_bytes = app, path, max_bytes

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return self.app(environ, start_response)
        if length < 0 or (self.max_bytes and length > self.max_bytes):
            return self.app(environ, start_response)
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        bind_context(request_id=request_id, method="POST", path=self.path, client_ip=environ.get("REMOTE_ADDR"),
                     user_agent=environ.get("HTTP_USER_AGENT") or None)
        try:
            status, answer = self._receive(environ["wsgi.input"].read(length), environ.get("HTTP_X_HUB_SIGNATURE_256"))
        finally:
            clear_context()
        if status != 200:
            answer = {"code": answer[0], "message": answer[1], "details": {}, "request_id": request_id}
        body = json.dumps(answer).encode()
        start_response(_STATUS_LINES[status], [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))), (REQUEST_ID_HEADER, request_id)])
        return [body]

    @staticmethod
    def _receive(body: bytes, signature: str | None) -> tuple[int, dict | tuple[str, str]]:
        opened: list[Session] = []  # the session for numbers the route cache misses: most requests open none

        def lookups() -> Session:
            if not opened:
                opened.append(new_autocommit_session())
            return opened[0]

        try:
            intake = webhooks.receive_webhook(lookups, body=body, signature=signature)
            for session in opened:
                session.commit()  # ends what the lookups began, as the view's unit of work would (a test's SAVEPOINT)
            return 200, {"status": "received" if intake.event_id else "duplicate"}
        except webhooks.WebhookSignatureError:
            return 401, SIGNATURE_REFUSED
        except Exception:
            log.exception("web.unhandled_error")
            return 500, _INTERNAL
        finally:
            for session in opened:
                session.close()
