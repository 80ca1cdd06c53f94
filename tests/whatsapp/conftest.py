"""A fake Graph API on 127.0.0.1 for the client tests. No database fixtures here.

A stdlib HTTP/1.1 server in a thread (werkzeug's dev server closes every connection, so it could not
show keep-alive reuse); werkzeug's `Request` parses what arrives.
"""

from __future__ import annotations

import json
import io
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.wrappers import Request

from shared.whatsapp import client as client_module
from shared.whatsapp.client import GraphClient

TOKEN = "EAAG-test-token-do-not-log"
API_VERSION = "v24.0"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    form: dict[str, str]
    files: dict[str, tuple[str | None, bytes, str | None]]
    remote_port: int


@dataclass
class ScriptedResponse:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeGraph:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def respond(self, status: int = 200, json: Any = None, **kwargs: Any) -> None:
        self._script.append(ScriptedResponse(status=status, json=json, **kwargs))

    @property
    def last(self) -> RecordedRequest:
        assert self.requests, "the fake Graph API received no request"
        return self.requests[-1]

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, remote_port: int
    ) -> ScriptedResponse:
        path, _, query = target.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "0",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
        }
        request = Request(environ)
        form: dict[str, str] = {}
        files: dict[str, tuple[str | None, bytes, str | None]] = {}
        if request.mimetype == "multipart/form-data":
            form = dict(request.form)
            files = {name: (f.filename, f.read(), f.mimetype) for name, f in request.files.items()}
        self.requests.append(
            RecordedRequest(
                method=method,
                path=request.path,
                query=dict(request.args),
                headers=headers,
                body=body,
                json=json.loads(body) if request.mimetype == "application/json" else None,
                form=form,
                files=files,
                remote_port=remote_port,
            )
        )
        return self._script.popleft() if self._script else ScriptedResponse(500, body=b"no scripted response")

    def __enter__(self) -> "FakeGraph":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(fake: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        timeout = 5  # an idle kept-alive connection does not hold its thread forever

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name: value for name, value in self.headers.items()}
            scripted = fake.handle(self.command, self.path, headers, body, self.client_address[1])
            if scripted.delay:
                time.sleep(scripted.delay)
            if scripted.body is not None:
                payload, content_type = scripted.body, "application/octet-stream"
            else:
                payload = json.dumps(scripted.json if scripted.json is not None else {}).encode()
                content_type = "application/json"
            headers_out = {"Content-Type": content_type, **scripted.headers, "Content-Length": str(len(payload))}
            try:
                self.send_response(scripted.status)
                for name, value in headers_out.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first (timeout tests)
                self.close_connection = True

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_graph():
    with FakeGraph() as fake:
        yield fake


@pytest.fixture(autouse=True)
def fresh_session():
    """Each test starts and ends without a process session (connections to a stopped fake server)."""
    client_module.reset_session()
    yield
    client_module.reset_session()


@pytest.fixture
def graph_client(fake_graph) -> GraphClient:
    return GraphClient(fake_graph.base_url, API_VERSION, TOKEN, connect_timeout=2, read_timeout=5)
