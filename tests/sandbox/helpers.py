"""Helpers of the sandbox tests: the numbers and templates they use, a real local webhook receiver
(werkzeug in a thread on 127.0.0.1) and short-hands for calling the sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
DISPLAY_NUMBER = "15550783881"
TOKEN = "sandbox-token-1"
APP_SECRET = "app-secret-1"
CUSTOMER = "16505551234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VERSION = "v24.0"

NUMBER = {
    "phone_number_id": PHONE_NUMBER_ID,
    "waba_id": WABA_ID,
    "display_phone_number": DISPLAY_NUMBER,
    "verified_name": "Lucky Shrub",
    "access_token": TOKEN,
    "app_secret": APP_SECRET,
}

ORDER_UPDATE = {
    "waba_id": WABA_ID,
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships today."},
        {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "Stop promotions"},
            {"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}"},
        ]},
    ],
}
WELCOME = {
    "waba_id": WABA_ID,
    "name": "welcome",
    "language": "en_US",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Welcome to Lucky Shrub, glad you are here."}],
}


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookReceiver:
    """A real HTTP endpoint that records every POST (raw bytes + headers) and answers the GET handshake."""

    def __init__(self, verify_token: str = "verify-me"):
        self.verify_token = verify_token
        self.posts: list[dict] = []
        self.answers: list[int] = []  # statuses to answer next, then 200
        self.delay = 0.0
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/whatsapp"

    @Request.application
    def _app(self, request: Request) -> Response:
        if request.method == "GET":
            args = request.args
            if args.get("hub.mode") == "subscribe" and args.get("hub.verify_token") == self.verify_token:
                return Response(args.get("hub.challenge", ""), mimetype="text/plain")
            return Response("forbidden", status=403)
        time.sleep(self.delay)
        raw = request.get_data()
        with self._lock:
            self.posts.append({"raw": raw, "headers": dict(request.headers), "at": time.monotonic()})
            status = self.answers.pop(0) if self.answers else 200
        return Response("ok", status=status)

    def payloads(self) -> list[dict]:
        with self._lock:
            return [json.loads(post["raw"]) for post in self.posts]

    def statuses(self) -> list[dict]:
        return [
            status
            for payload in self.payloads()
            for entry in payload["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.posts) >= count:
                    break
            time.sleep(0.01)
        return self.payloads()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def send(graph, payload: dict, *, number: str = PHONE_NUMBER_ID, headers: dict | None = None):
    body = {"messaging_product": "whatsapp", **payload}
    return graph.post(f"/{VERSION}/{number}/messages", json=body, headers=AUTH if headers is None else headers)


def text(to: str = CUSTOMER, body: str = "Hi", **extra) -> dict:
    return {"to": to, "type": "text", "text": {"body": body}, **extra}


def customer_writes(graph, wa_id: str = CUSTOMER, number: str = PHONE_NUMBER_ID, **spec) -> dict:
    if "type" not in spec:
        spec = {"type": "text", "text": {"body": "hello"}, **spec}
    response = graph.post(f"/_sandbox/numbers/{number}/inbound", json={"from": wa_id, **spec})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def seed_template(graph, definition: dict, **changes) -> dict:
    response = graph.post("/_sandbox/templates", json={**definition, **changes})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def drain(graph, timeout: float = 5.0) -> None:
    assert graph.post("/_sandbox/drain", json={"timeout": timeout}).get_json() == {"idle": True}


def webhooks(graph, **filters) -> list[dict]:
    return graph.get("/_sandbox/webhooks", query_string=filters).get_json()["data"]
