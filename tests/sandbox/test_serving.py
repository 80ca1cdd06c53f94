"""Serving over HTTP/1.1 keep-alive (sandbox/keepalive.py) and delivering over kept-alive connections
(sandbox/callbacks.py): what a connection carries from one request to the next."""

from __future__ import annotations

import json
import socket
import socketserver
import threading

import pytest
import requests

from sandbox.callbacks import CallbackClient
from sandbox.server import run_in_thread
from tests.sandbox.helpers import AUTH, NUMBER, PHONE_NUMBER_ID, VERSION


@pytest.fixture
def served():
    base_url, stop = run_in_thread({"numbers": [NUMBER]})
    yield base_url, int(base_url.rsplit(":", 1)[1]), stop
    stop()


def exchange(sock: socket.socket, request: bytes) -> tuple[bytes, bytes]:
    """Send one request and read one answer (by its Content-Length): the head and the body."""
    sock.sendall(request)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, body = buffer.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_one_connection_carries_many_requests_even_when_a_body_is_left_unread(served):
    _, port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        unread = b'{"ignored": true}'
        head, _ = exchange(sock, b"POST /_sandbox/nothing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(unread), unread))
        assert head.startswith(b"HTTP/1.1 404") and b"connection: close" not in head.lower()
        body = json.dumps({"messaging_product": "whatsapp", "to": "16505551234", "text": {"body": "Hi"}}).encode()
        for _ in range(3):
            head, answer = exchange(sock, (f"POST /{VERSION}/{PHONE_NUMBER_ID}/messages HTTP/1.1\r\nHost: x\r\n"
                                           f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
                                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
            assert head.startswith(b"HTTP/1.1 400") and json.loads(answer)["error"]["code"] == 131047


def test_a_chunked_body_is_read_and_its_connection_closed_after_the_answer(served):
    base_url, _, _ = served
    chunks = iter([b'{"messaging_product": "whatsapp", ', b'"to": "16505551234", "text": {"body": "Hi"}}'])
    response = requests.post(f"{base_url}/{VERSION}/{PHONE_NUMBER_ID}/messages", data=chunks, timeout=5,
                             headers={**AUTH, "Content-Type": "application/json"})
    assert response.json()["error"]["code"] == 131047  # the body was parsed: the window check came after it
    assert response.headers["Connection"] == "close"


def test_stopping_the_server_ends_its_kept_alive_connections():
    base_url, stop = run_in_thread({"numbers": [NUMBER]})
    session = requests.Session()
    assert session.get(f"{base_url}/_sandbox/clock", timeout=5).status_code == 200
    stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{base_url}/_sandbox/clock", timeout=5)


class ClosingAfterEachAnswer(socketserver.BaseRequestHandler):
    """Answers one POST with a keep-alive 200, then hangs up anyway (as an idle timeout would)."""

    def handle(self) -> None:
        self.server.connections += 1
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += self.request.recv(65536)
        head, _, body = buffer.partition(b"\r\n\r\n")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += self.request.recv(65536)
        self.server.bodies.append(body)
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_the_callback_client_posts_again_on_a_fresh_connection_when_the_kept_one_was_closed():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), ClosingAfterEachAnswer)
    server.connections, server.bodies = 0, []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    client = CallbackClient()
    url = f"http://127.0.0.1:{server.server_address[1]}/webhooks?x=1"
    try:
        assert [client.post(url, f"{n}".encode(), {}, 5) for n in range(3)] == [200, 200, 200]
        assert server.bodies == [b"0", b"1", b"2"] and server.connections == 3
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def test_the_callback_client_refuses_what_is_not_an_http_url():
    with pytest.raises(ValueError):
        CallbackClient().post("ftp://127.0.0.1/webhooks", b"{}", {}, 1)
