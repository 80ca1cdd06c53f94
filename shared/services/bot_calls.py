"""Bots pipeline: the two outside calls a chatbot makes, an `api_call` node's HTTP request and an `ai_prompt` node's
chat completion. The bots pool performs them outside any database transaction, and feeds the event each answers
(shared.flows: api_result, ai_result) to the session's next step.

Neither raises: a refused address, a timeout, a failed connection, an HTTP error or a body that is not what was
expected is `ok: False` with a short error text ("url_not_allowed: ...", "timeout after 3 s", "http_error: 500"),
and the flow takes its failure or fallback branch.

Where a call may go: only where shared.public_urls allows (private ranges need OUTBOUND_ALLOWED_HOSTS), and the
connection is made to the very address that check returned, so a name that resolves elsewhere a moment later
(DNS rebinding) is not followed. Redirects are not followed at all (each hop would be another unchecked place);
a 3xx is a failure naming where it pointed. Proxies and ~/.netrc from the environment are not used (a proxy would
connect to wherever the name resolves for it); the CA bundle it names (REQUESTS_CA_BUNDLE) is.

How long a call may take: `timeout_seconds` (at most 60) bounds the connect and every read, and the body is read
against a deadline of that many seconds from the start, up to 256 KB (more is a failure). A server that drips its
status line and headers a byte at a time is bounded only by the read timeout per byte and the task's time limit.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
import urllib3
from requests.adapters import HTTPAdapter
from sqlalchemy.orm import Session

from shared.crypto import SecretUnreadableError
from shared.flows.nodes import MAX_CALL_TIMEOUT
from shared.flows.walk import DEFAULT_CALL_TIMEOUT
from shared.public_urls import UrlNotAllowedError, check_public_url
from shared.services import ai_settings
from shared.settings import get_settings

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 256 * 1024
# The interpreter's own limits (shared/flows), by the action each node asks for.
DEFAULT_TIMEOUT_SECONDS = {"call_api": DEFAULT_CALL_TIMEOUT["api_call"], "call_ai": DEFAULT_CALL_TIMEOUT["ai_prompt"]}
READ_CHUNK_BYTES = 16 * 1024
# What an HTTP request may not carry from a flow: the connection's own business.
HEADERS_NOT_FORWARDED = {"host", "content-length", "transfer-encoding", "connection"}


class _CallFailed(Exception):
    """Why a call gave no usable answer, in the words the event carries."""

    def __init__(self, error: str, status: int = 0) -> None:
        super().__init__(error)
        self.error, self.status = error, status


class _HttpError(_CallFailed):
    """A non-2xx answer; its JSON body, if any, goes with it."""

    def __init__(self, status: int, parsed: Any) -> None:
        super().__init__(f"http_error: {status}", status)
        self.parsed = parsed


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address the URL check returned while the request keeps its URL: the TLS name (SNI and the
    certificate check) is still the URL's host."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": host_params["host"]}
        return {**host_params, "host": self._address}, pool_kwargs


def _timeout(action: dict[str, Any]) -> float:
    try:
        seconds = float(action.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS[action["type"]])
    except (TypeError, ValueError):
        seconds = DEFAULT_TIMEOUT_SECONDS[action["type"]]
    return min(max(seconds, 0.1), MAX_CALL_TIMEOUT)


def _read_body(response: requests.Response, *, deadline: float, timeout: float) -> bytes:
    """The body, read one network read at a time, each given no more than the time left."""
    body = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _CallFailed(f"timeout after {timeout:g} s")
        sock = getattr(response.raw.connection, "sock", None)
        if sock is not None:
            sock.settimeout(min(left, timeout))
        chunk = response.raw.read1(READ_CHUNK_BYTES, decode_content=True)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _CallFailed(f"response_too_large: more than {MAX_BODY_BYTES // 1024} KB", response.status_code)


def _request(method: str, url: str, *, headers: dict[str, str], body: Any, timeout: float) -> tuple[int, Any]:
    """(status, parsed JSON body or None) of a 2xx answer; _CallFailed otherwise."""
    deadline = time.monotonic() + timeout
    try:
        address = check_public_url(url, allowed=get_settings().outbound_allowed_hosts)
    except UrlNotAllowedError as exc:
        raise _CallFailed(f"url_not_allowed: {exc.message}") from exc
    except ValueError as exc:  # urlsplit's: a malformed address such as "http://[::1"
        raise _CallFailed(f"url_not_allowed: {url[:200]!r} is not a valid URL") from exc
    sent_headers = {str(k): str(v) for k, v in headers.items() if str(k).lower() not in HEADERS_NOT_FORWARDED}
    sent_headers["Host"] = urlsplit(url).netloc.rpartition("@")[2]  # we connect to an address, not the name
    left = deadline - time.monotonic()  # the name's lookup took some of it
    if left <= 0:
        raise _CallFailed(f"timeout after {timeout:g} s")
    with requests.Session() as session:
        session.trust_env = False
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.mount("http://", _PinnedAdapter(address))
        session.mount("https://", _PinnedAdapter(address))
        try:
            with session.request(method, url, headers=sent_headers, json=body, timeout=(left, left),
                                 allow_redirects=False, stream=True) as response:
                status = response.status_code
                if response.is_redirect:
                    raise _CallFailed(f"redirect_not_followed: {status} to {response.headers.get('Location')}", status)
                content = _read_body(response, deadline=deadline, timeout=timeout)
                content_type = response.headers.get("Content-Type", "")
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            raise _CallFailed(f"timeout after {timeout:g} s") from exc
        # urllib3's and the socket's own errors come through while the body is read; ValueError: a header
        # requests refuses, an unusable URL
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise _CallFailed(f"connection_failed: {type(exc).__name__}") from exc
    if not 200 <= status < 300:
        raise _HttpError(status, _json(content, "", status))  # the HTTP status is the news, whatever the body
    return status, _json(content, content_type, status)


def _json(content: bytes, content_type: str, status: int) -> Any:
    """The body as JSON; None when empty or not JSON, unless it says it is JSON (then it is a failure)."""
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except ValueError as exc:
        if "json" in content_type.lower():
            raise _CallFailed("invalid_json: the response says it is JSON but is not", status) from exc
        return None


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def call_api(action: dict[str, Any]) -> dict[str, Any]:
    """Perform an `api_call` node's `call_api` action; answer its `api_result` event:
    {"type": "api_result", "call_id", "ok", "status" (0 when no whole answer came), "json" (the body, None when not
    JSON), "error" (None when ok)}. ok means a 2xx answer; a 3xx, 4xx or 5xx is ok False with its status (and its
    JSON body, if any)."""
    timeout = _timeout(action)
    started = time.monotonic()
    event = {"type": "api_result", "call_id": action.get("call_id"), "ok": False, "status": 0, "json": None,
             "error": None}
    try:
        event["status"], event["json"] = _request(
            str(action.get("method") or "GET").upper(), str(action.get("url") or ""),
            headers=action.get("headers") if isinstance(action.get("headers"), dict) else {}, body=action.get("body"),
            timeout=timeout)
        event["ok"] = True
    except _HttpError as failure:
        event.update(status=failure.status, json=failure.parsed, error=failure.error)
    except _CallFailed as failure:
        event.update(status=failure.status, error=failure.error)
    log.info("bots.api_called", call_id=event["call_id"], host=_host(str(action.get("url") or "")),
             ok=event["ok"], status=event["status"], error=event["error"],
             elapsed_ms=round((time.monotonic() - started) * 1000))
    return event


def call_ai(session: Session, *, org_id: uuid.UUID, action: dict[str, Any]) -> dict[str, Any]:
    """Perform an `ai_prompt` node's `call_ai` action with the organization's AI settings; answer its `ai_result`
    event: {"type": "ai_result", "call_id", "ok", "text" (the first choice's message, None unless ok), "error"}.

    `session` is only read from, before the call. If it had no transaction open, the one the read began is ended
    before the call (rolled back: nothing was written), so no connection waits on the endpoint; a transaction the
    caller already had stays open for the whole call, so pass a session with none.
    """
    began = not session.in_transaction()
    try:
        endpoint = ai_settings.ai_endpoint(session, org_id=org_id)
        unreadable = False
    except SecretUnreadableError:
        endpoint, unreadable = None, True
    finally:
        if began:
            session.rollback()
    timeout = _timeout(action)
    started = time.monotonic()
    event = {"type": "ai_result", "call_id": action.get("call_id"), "ok": False, "text": None, "error": None}
    if unreadable:
        event["error"] = "ai_key_unreadable: the stored API key cannot be decrypted with ENCRYPTION_KEYS"
    elif endpoint is None:
        event["error"] = "ai_not_configured: the organization has no AI settings"
    elif not endpoint.is_enabled:
        event["error"] = "ai_disabled: the organization's AI settings are turned off"
    else:
        try:
            event["text"] = _complete(endpoint, action, timeout=timeout)
            event["ok"] = True
        except _CallFailed as failure:
            event["error"] = failure.error
    log.info("bots.ai_called", call_id=event["call_id"], org_id=str(org_id), ok=event["ok"], error=event["error"],
             elapsed_ms=round((time.monotonic() - started) * 1000))
    return event


def _complete(endpoint: ai_settings.AiEndpoint, action: dict[str, Any], *, timeout: float) -> str:
    messages = [{"role": "system", "content": str(action["system"])}] if action.get("system") else []
    messages.append({"role": "user", "content": str(action.get("prompt") or "")})
    try:
        _, answer = _request("POST", f"{endpoint.base_url.rstrip('/')}/chat/completions",
                             headers={"Authorization": f"Bearer {endpoint.api_key}"},
                             body={"model": endpoint.model, "messages": messages}, timeout=timeout)
    except _HttpError as failure:
        reason = (failure.parsed.get("error") or {}) if isinstance(failure.parsed, dict) else {}
        message = reason.get("message") if isinstance(reason, dict) else None
        raise _CallFailed(f"{failure.error} {message[:200]}" if isinstance(message, str) else failure.error) from None
    try:
        text = answer["choices"][0]["message"]["content"]
    except (TypeError, KeyError, IndexError):
        text = None
    if not isinstance(text, str):
        raise _CallFailed("malformed_answer: no choices[0].message.content in the endpoint's answer")
    return text
