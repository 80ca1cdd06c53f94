"""POSTs to callback URLs, over one kept-alive stdlib connection per origin.

The webhook sender's only caller is the scheduler thread, so the connections need no lock. http.client
rather than requests: a delivery through requests.Session cost about 0.6 ms of CPU (request preparation,
the environment's proxy and netrc lookups, urllib3's pool) against 0.1 ms here (bench/README.md), and the
sandbox sends two or three of them per message. Like Meta, it follows no redirects: any answer but 200
is a failed attempt.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

# The peer closed a kept-alive connection between two deliveries: worth one more try on a fresh one.
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
# Everything a delivery can fail with: refused, reset or timed out, a malformed answer, an unusable URL.
DELIVERY_ERRORS = (OSError, http.client.HTTPException, ValueError)


class CallbackClient:
    def __init__(self) -> None:
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._tls = None

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST `body` and answer the status code; raises one of DELIVERY_ERRORS."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        origin = (parts.scheme, parts.netloc)
        connection = self._connections.get(origin)
        if connection is None:
            connection = self._connections[origin] = self._connect(parts, timeout)
            reused = False
        else:
            reused = connection.sock is not None
        try:
            return self._exchange(connection, target, body, headers, timeout)
        except STALE_CONNECTION_ERRORS:
            connection.close()
            if not reused:
                raise
            return self._exchange(connection, target, body, headers, timeout)  # http.client reconnects
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def _connect(self, parts, timeout: float) -> http.client.HTTPConnection:
        if parts.scheme == "http":
            return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=self._tls)

    @staticmethod
    def _exchange(connection: http.client.HTTPConnection, target: str, body: bytes, headers: dict[str, str],
                  timeout: float) -> int:
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()  # the connection is reusable only once the answer is read to its end
        return response.status
