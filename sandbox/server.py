"""Serving the sandbox: in a background thread (tests) or in the foreground (`python -m sandbox`)."""

from __future__ import annotations

import threading
from typing import Callable

from sandbox.app import create_app
from sandbox.keepalive import KeepAliveRequestHandler, KeepAliveServer


class QuietRequestHandler(KeepAliveRequestHandler):
    """No access-log line per request (tests and benchmarks send thousands)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


def run_in_thread(
    config: dict | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Start a sandbox on `host:port` (port 0 = a free one); answer its base URL and a function that stops it."""
    app = create_app(config)
    server = KeepAliveServer(host, port, app, QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="sandbox-server", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        app.extensions["sandbox"].close()

    return f"http://{host}:{server.server_port}", stop


def serve_forever(config: dict | None = None, *, host: str = "127.0.0.1", port: int = 8090,
                  quiet: bool = False) -> None:
    app = create_app(config)
    try:
        serve(app, host=host, port=port, quiet=quiet,
              banner="WhatsApp Cloud API sandbox on http://{host}:{port} (control API under /_sandbox)")
    finally:
        app.extensions["sandbox"].close()


def serve(app, *, host: str, port: int, quiet: bool = False, banner: str = "serving on http://{host}:{port}") -> None:
    """Serve any WSGI app the way the sandbox is served (bench/sandbox.py measures a bare app on it)."""
    server = KeepAliveServer(host, port, app, QuietRequestHandler if quiet else KeepAliveRequestHandler)
    print(banner.format(host=host, port=server.server_port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
