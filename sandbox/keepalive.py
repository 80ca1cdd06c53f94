"""Werkzeug's threaded development server, with HTTP/1.1 keep-alive.

Werkzeug's handler answers every request with `Connection: close`. The platform sends over one keep-alive
session, so each send then paid for a TCP connect, an accept, a new server thread and a close, and the
server waited up to 10 ms per request for the client to hang up: most of the sandbox's CPU per request
(bench/README.md). This handler keeps Werkzeug's environ, access log and error handling and replaces only
the exchange: the request body is read to its end (so the next request starts where it should), the
answer goes out with its Content-Length in one write, and the connection stays open. One thread serves
one connection for as long as the client keeps it.
"""

from __future__ import annotations

import socket
import threading
import time
import traceback

from werkzeug.exceptions import ClientDisconnected, InternalServerError
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

NO_BODY_STATUSES = {204, 304}
DISCARD_CHUNK_BYTES = 1024 * 1024
SINGLE_WRITE_BYTES = 64 * 1024  # larger bodies (media downloads) go in a second write, not copied into one


class KeepAliveRequestHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    _date: tuple[int, str] = (0, "")  # the Date header's text, formatted once a second (shared by all threads)

    def run_wsgi(self) -> None:
        # http.server's parse_request has already answered `Expect: 100-continue`.
        self.environ = environ = self.make_environ()
        body_in = self._bounded_input(environ)
        try:
            status, headers, body = self._call(self.server.app, environ)
        except Exception as error:
            if self.server.passthrough_errors:
                raise
            self.server.log("error", f"Error on request:\n{''.join(traceback.format_exception(error))}")
            self.close_connection = True
            status, headers, body = self._call(InternalServerError(), environ)
        if body_in is None:
            self.close_connection = True  # a chunked body: Werkzeug's reader knows where it ends, this one does not
        else:
            self._discard_unread(body_in)
        self._answer(status, headers, body)

    def _discard_unread(self, body_in: LimitedStream) -> None:
        """Read what the app left of the body (an upload refused as too large, say), a chunk at a time."""
        try:
            while body_in.read(DISCARD_CHUNK_BYTES):
                pass
        except ClientDisconnected:
            self.close_connection = True

    def _bounded_input(self, environ: dict) -> LimitedStream | None:
        """The request body as a stream that ends at Content-Length; None for chunked bodies (Werkzeug's own)."""
        if environ.get("wsgi.input_terminated"):
            return None
        try:
            length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
        except ValueError:
            length = 0
            self.close_connection = True
        stream = LimitedStream(self.rfile, length)
        environ["wsgi.input"] = stream
        environ["wsgi.input_terminated"] = True
        return stream

    @staticmethod
    def _call(app, environ: dict) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        started: list = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]  # nothing is sent before the app returns, so an error may replace it
            return lambda data: body.append(data)  # the legacy write() callable

        body: list[bytes] = []
        iterable = app(environ, start_response)
        try:
            body.extend(iterable)
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
        return started[0], started[1], body

    def _date_header(self) -> str:
        second, text = KeepAliveRequestHandler._date
        now = int(time.time())
        if now != second:
            text = self.date_time_string(now)
            KeepAliveRequestHandler._date = (now, text)
        return text

    def _answer(self, status: str, headers: list[tuple[str, str]], body: list[bytes]) -> None:
        code = int(status.split(None, 1)[0])
        lines = [f"{self.protocol_version} {status}", f"Server: {self.version_string()}",
                 f"Date: {self._date_header()}"]
        lines += [f"{name}: {value}" for name, value in headers]
        bodiless = self.command == "HEAD" or code < 200 or code in NO_BODY_STATUSES
        if not any(name.lower() == "content-length" for name, _ in headers) and not bodiless:
            lines.append(f"Content-Length: {sum(map(len, body))}")
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = b"" if bodiless else b"".join(body)
        if len(payload) <= SINGLE_WRITE_BYTES:
            self.wfile.write(head + payload)
        else:
            self.wfile.write(head)
            self.wfile.write(payload)
        self.log_request(code)


class KeepAliveServer(ThreadedWSGIServer):
    """Closing the server also ends its open connections, so a stopped sandbox answers nobody."""

    def __init__(self, *args, **kwargs):
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
