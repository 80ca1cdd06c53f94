"""A chatbot's outside calls: api_call nodes reach a local test server only when the allow-list lets them, within
their timeout, and never through a redirect; ai_prompt nodes get their answer from the sandbox's stand-in of an
OpenAI-compatible endpoint, and a failing, hanging or missing endpoint is a failure the flow can branch on."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared.services import ai_settings, bot_calls
from shared.settings import get_settings, use_settings


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.do_POST()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                 "body": self.rfile.read(length) if length else b""})
        if self.path.startswith("/order"):
            self._answer(200, json.dumps({"order": {"status": "shipped", "items": [{"name": "Lamp"}]}}).encode())
        elif self.path == "/slow":
            time.sleep(3)
            self._answer(200, b"{}")
        elif self.path == "/drip":  # headers at once, then a byte every 0.2 s for 6 s
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "30")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        elif self.path == "/broken":
            self._answer(500, b'{"error": "database down"}')
        elif self.path == "/page":
            self._answer(200, b"<html>thanks</html>", "text/html")
        elif self.path == "/not-json":
            self._answer(200, b"{oops", "application/json")
        elif self.path == "/huge":
            self._answer(200, b"[" + b"1," * 200_000 + b"1]")
        elif self.path.startswith("/redirect"):
            target = self.path.partition("?to=")[2]
            self._answer(302, b"", "text/plain", Location=target)
        else:
            self._answer(404, b'{"error": "no such page"}')


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def seen(server):
    server.seen.clear()
    return server.seen


@pytest.fixture
def base(server):
    return f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def allowed(settings):
    """OUTBOUND_ALLOWED_HOSTS=127.0.0.1, as an operator whose test server is local would set it."""
    original = get_settings()
    use_settings(original.with_overrides(outbound_allowed_hosts=("127.0.0.1",)))
    yield
    use_settings(original)


def api(url, *, method="GET", timeout=3, **fields):
    return {"type": "call_api", "call_id": "call-1", "method": method, "url": url, "headers": fields.pop("headers", {}),
            "body": fields.pop("body", None), "timeout_seconds": timeout, **fields}


def test_a_json_answer_comes_back_with_its_status_and_the_request_went_as_json(allowed, base, seen):
    event = bot_calls.call_api(api(f"{base}/orders/42", method="POST", headers={"X-Shop": "acme"},
                                   body={"order_id": 42, "note": "olá"}))
    assert event == {"type": "api_result", "call_id": "call-1", "ok": True, "status": 200, "error": None,
                     "json": {"order": {"status": "shipped", "items": [{"name": "Lamp"}]}}}
    [request] = seen
    assert request["method"] == "POST" and request["path"] == "/orders/42"
    assert json.loads(request["body"]) == {"order_id": 42, "note": "olá"}
    assert request["headers"]["Content-Type"] == "application/json" and request["headers"]["X-Shop"] == "acme"
    assert request["headers"]["Host"] == base.removeprefix("http://")


def test_a_slow_endpoint_fails_at_the_timeout(allowed, base):
    started = time.monotonic()
    event = bot_calls.call_api(api(f"{base}/slow", timeout=1))
    elapsed = time.monotonic() - started
    assert event["ok"] is False and event["status"] == 0 and event["error"] == "timeout after 1 s"
    assert elapsed < 2


def test_a_body_dripped_slowly_still_stops_at_the_deadline(allowed, base):
    """Every byte comes within the read timeout; only the deadline on the whole call ends it (the body takes 6 s)."""
    started = time.monotonic()
    event = bot_calls.call_api(api(f"{base}/drip", timeout=1))
    assert event["ok"] is False and event["error"] == "timeout after 1 s"
    assert time.monotonic() - started < 2


def test_a_server_error_is_a_failure_with_its_status_and_body(allowed, base):
    event = bot_calls.call_api(api(f"{base}/broken"))
    assert event == {"type": "api_result", "call_id": "call-1", "ok": False, "status": 500,
                     "json": {"error": "database down"}, "error": "http_error: 500"}


def test_a_page_that_is_not_json_is_ok_without_json_but_broken_json_is_a_failure(allowed, base):
    page = bot_calls.call_api(api(f"{base}/page"))
    assert (page["ok"], page["status"], page["json"], page["error"]) == (True, 200, None, None)
    broken = bot_calls.call_api(api(f"{base}/not-json"))
    assert broken["ok"] is False and broken["error"].startswith("invalid_json")


def test_an_answer_past_256_kb_is_refused(allowed, base):
    event = bot_calls.call_api(api(f"{base}/huge"))
    assert event["ok"] is False and event["error"] == "response_too_large: more than 256 KB"


@pytest.mark.parametrize("where", ["local", "http://10.1.2.3/orders", "http://169.254.169.254/latest/meta-data/",
                                   "http://localhost/orders", "file:///etc/passwd"])
def test_private_addresses_are_refused_without_the_allow_list(settings, base, seen, where):
    assert not get_settings().outbound_allowed_hosts
    url = f"{base}/orders/1" if where == "local" else where
    started = time.monotonic()
    event = bot_calls.call_api(api(url, timeout=5))
    assert event["ok"] is False and event["status"] == 0 and event["error"].startswith("url_not_allowed: ")
    assert time.monotonic() - started < 1  # refused before any connection is tried
    assert seen == []


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "/orders/1"])
def test_a_redirect_is_not_followed_even_to_an_allowed_place(allowed, base, seen, target):
    event = bot_calls.call_api(api(f"{base}/redirect?to={target}"))
    assert event["ok"] is False and event["status"] == 302
    assert event["error"] == f"redirect_not_followed: 302 to {target}"
    assert [request["path"] for request in seen] == [f"/redirect?to={target}"]


def test_the_connection_goes_to_the_address_the_check_approved(monkeypatch, base, seen):
    """A name is resolved once, by the check: the request connects to that address (a name that would resolve
    somewhere else a moment later is not asked again), and still names its host."""
    port = base.rsplit(":", 1)[1]
    monkeypatch.setattr(bot_calls, "check_public_url", lambda url, allowed=(): "127.0.0.1")
    event = bot_calls.call_api(api(f"http://orders.example.invalid:{port}/orders/7"))
    assert event["ok"] is True and event["json"]["order"]["status"] == "shipped"
    assert seen[0]["headers"]["Host"] == f"orders.example.invalid:{port}"


def test_an_unreachable_server_is_a_failure_not_an_exception(allowed, server):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = closed.server_port
    closed.server_close()
    event = bot_calls.call_api(api(f"http://127.0.0.1:{port}/orders"))
    assert event["ok"] is False and event["status"] == 0 and event["error"].startswith("connection_failed")


# -- ai_prompt, through the sandbox's stand-in ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_ai():
    from sandbox.server import run_in_thread

    url, stop = run_in_thread()
    yield url
    stop()


@pytest.fixture
def ai_endpoint(allowed, db_session, organization, sandbox_ai):
    """The organization's AI settings pointing at the sandbox; `answers(**knobs)` sets what it answers."""
    ai_settings.save_ai_settings(db_session, org_id=organization.id, base_url=f"{sandbox_ai}/ai/v1",
                                 model="gpt-test", api_key="sk-test-abcd1234", actor_id=None)

    def answers(**knobs):
        response = requests.put(f"{sandbox_ai}/_sandbox/ai", json=knobs, timeout=5)
        assert response.status_code == 200, response.text

    answers()
    return answers


def ai(prompt, *, system=None, timeout=3):
    return {"type": "call_ai", "call_id": "ai-1", "system": system, "prompt": prompt, "timeout_seconds": timeout}


def test_the_endpoints_answer_comes_back_as_text(db_session, organization, ai_endpoint):
    ai_endpoint(answers={"refund": "Refunds take 5 days."})
    event = bot_calls.call_ai(db_session, org_id=organization.id,
                              action=ai("How long does a REFUND take?", system="You are a helpful shop assistant."))
    assert event == {"type": "ai_result", "call_id": "ai-1", "ok": True, "text": "Refunds take 5 days.",
                     "error": None}


def test_an_endpoint_error_is_a_failure(db_session, organization, ai_endpoint):
    ai_endpoint(fail="error")
    event = bot_calls.call_ai(db_session, org_id=organization.id, action=ai("Hello"))
    assert event["ok"] is False and event["text"] is None
    assert event["error"].startswith("http_error: 500") and "server had an error" in event["error"]


def test_an_endpoint_that_hangs_fails_at_the_timeout(db_session, organization, ai_endpoint):
    ai_endpoint(fail="timeout", hang_seconds=3)
    started = time.monotonic()
    event = bot_calls.call_ai(db_session, org_id=organization.id, action=ai("Hello", timeout=1))
    assert event["ok"] is False and event["error"] == "timeout after 1 s"
    assert time.monotonic() - started < 2


def test_missing_or_disabled_settings_are_a_failure(db_session, organization, ai_endpoint, sandbox_ai):
    ai_settings.save_ai_settings(db_session, org_id=organization.id, base_url=f"{sandbox_ai}/ai/v1", model="gpt-test",
                                 is_enabled=False, actor_id=None)
    disabled = bot_calls.call_ai(db_session, org_id=organization.id, action=ai("Hello"))
    assert disabled["ok"] is False and disabled["error"].startswith("ai_disabled")
    ai_settings.delete_ai_settings(db_session, org_id=organization.id, actor_id=None)
    missing = bot_calls.call_ai(db_session, org_id=organization.id, action=ai("Hello"))
    assert missing["ok"] is False and missing["error"].startswith("ai_not_configured")


def test_an_endpoint_moved_to_a_private_address_is_refused_at_call_time(db_session, organization, ai_endpoint):
    """The base URL is checked again for every call: the allow-list may have changed since it was saved."""
    use_settings(get_settings().with_overrides(outbound_allowed_hosts=()))  # `allowed` restores it
    event = bot_calls.call_ai(db_session, org_id=organization.id, action=ai("Hello"))
    assert event["ok"] is False and event["error"].startswith("url_not_allowed")


def test_the_settings_read_does_not_keep_a_transaction_open_during_the_call(monkeypatch, organization, ai_endpoint):
    """A session with no transaction of its own: the one the read began is over before the endpoint is called."""
    from shared import db

    session = db.new_session()
    open_during_call: list[bool] = []
    complete = bot_calls._complete

    def watched(*args, **kwargs):
        open_during_call.append(session.in_transaction())
        return complete(*args, **kwargs)

    monkeypatch.setattr(bot_calls, "_complete", watched)
    try:
        event = bot_calls.call_ai(session, org_id=organization.id, action=ai("Hello"))
    finally:
        session.close()
    assert event["ok"] is True and open_during_call == [False]
