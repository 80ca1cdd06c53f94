"""Benchmark: the webhook intake (POST /api/v1/webhooks/whatsapp) under gunicorn, against a bare Flask endpoint.

Run with `make bench` (embedded stores unless URLs are set), or on its own:

    .venv/bin/python -m shared.embedded -- .venv/bin/python bench/webhook_intake.py

It uses a database of its own (migrated, dropped afterwards) and a Redis database index of its own
(BENCH_REDIS_DB, default 13) whose queue keys it deletes at the end, so `make run` data is untouched.
An organization and a WhatsApp number with an app secret are created through the services; every
payload is a typical 1-3 KB `whatsapp_business_account` body (inbound messages, status batches, or
both), unique (the intake dedupes by SHA-256) and signed with `X-Hub-Signature-256` by that secret.

Two servers run side by side with the Procfile's web settings (`gunicorn -c gunicorn.conf.py`: threaded
workers, ${WEB_CONCURRENCY:-2} x ${WEB_THREADS:-8}; no access log, a control socket of their own): `wsgi:app`,
and a bare Flask app whose one POST route reads the body and answers 200. The load generator is a few processes on
raw HTTP/1.1 sockets with pre-built, pre-signed requests, so it spends little of the machine's CPU on itself.

Prints, for both:
1. max rate: a closed loop of BENCH_REQUESTS requests (default 6,000) over BENCH_CLOSED_CLIENTS keep-alive
   connections (default 16: enough to keep both workers' threads busy), bounded by BENCH_CLOSED_SECONDS
   (default 60 s); BENCH_ROUNDS rounds (default 3), bare and intake in turn, the median round of each
   (a round of the bare endpoint lasts about a second, and one such second swings by a third on this machine);
2. latency at an open-loop, paced BENCH_OPEN_RATE (default 500 req/s) for BENCH_OPEN_SECONDS (default 10 s)
   over BENCH_OPEN_CLIENTS senders (default 8); latency runs from each request's scheduled send time,
   so a server that falls behind shows it (no coordinated omission); senders stop 10 s after the planned end.
Targets: intake rate >= 50% of bare, and intake p99 < 50 ms at 500 req/s. Also printed: the load
generator's own CPU per request, the web workers' and the whole machine's CPU per request in the closed
loop (the steadier figures: the rate follows them), and the load average before the run (the machine has few cores:
anything else running skews both servers' figures).
Server logs keep the environment's LOG_LEVEL (INFO, as under `make run`) unless BENCH_SERVER_LOG_LEVEL is set;
they go to a temporary file, shown when a server fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from shared.embedded import free_port
from shared.logs import configure_logging
from shared.queueing.names import WEBHOOKS
from shared.settings import PROJECT_ROOT, Settings, use_settings

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "6000"))
CLOSED_CLIENTS = int(os.environ.get("BENCH_CLOSED_CLIENTS", "16"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLOSED_SECONDS = float(os.environ.get("BENCH_CLOSED_SECONDS", "60"))
OPEN_RATE = float(os.environ.get("BENCH_OPEN_RATE", "500"))
OPEN_SECONDS = float(os.environ.get("BENCH_OPEN_SECONDS", "10"))
OPEN_CLIENTS = int(os.environ.get("BENCH_OPEN_CLIENTS", "8"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "300"))
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "13"))
WORKERS = os.environ.get("WEB_CONCURRENCY") or "2"
THREADS = os.environ.get("WEB_THREADS") or "8"
SERVER_LOG_LEVEL = os.environ.get("BENCH_SERVER_LOG_LEVEL")
TARGET_RATIO = 0.50
TARGET_P99_MS = 50.0
PATH = "/api/v1/webhooks/whatsapp"

NUMBER = {"waba_id": "990100200300", "phone_number_id": "990100200301", "display_phone_number": "15550199001",
          "access_token": "EAAG-bench-token", "app_secret": f"bench-app-secret-{uuid.uuid4().hex}"}

BARE_APP = '''"""A bare Flask app: the floor any endpoint on this machine and these gunicorn settings can reach."""
from flask import Flask, request

app = Flask(__name__)


@app.post("{path}")
def webhook():
    request.get_data()
    return {{"status": "received"}}
'''.format(path=PATH)


# -- payloads -------------------------------------------------------------------------------

WORDS = ("olá", "pedido", "entrega", "amanhã", "obrigado", "preço", "boleto", "pix", "quando", "chega", "meu",
         "não", "recebi", "ainda", "código", "rastreio", "por", "favor", "hello", "order", "status", "please",
         "is", "my", "refund", "ready", "thanks", "😊", "👍", "🙏", "ação", "você", "tamanho", "cor", "azul")
NAMES = ("Ana Souza", "João Pereira", "Márcia Lima", "Bruno", "Chloé Martin", "Davi 🎸", "Eva Müller", "Fábio")


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _wamid(serial: str, n: int) -> str:
    return f"wamid.HBgNNTUxMTk{serial}{n:04d}FQIAEhgUM0E"


def _inbound(rng: random.Random, serial: str, n: int, wa_id: str, ts: str) -> dict:
    message = {"from": wa_id, "id": _wamid(serial, n), "timestamp": ts}
    kind = rng.random()
    if kind < 0.55:
        message |= {"type": "text", "text": {"body": _words(rng, rng.randint(4, 60))}}
    elif kind < 0.70:
        message |= {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {
            "id": f"btn-{rng.randint(1, 9)}", "title": _words(rng, 2)}}}
    elif kind < 0.85:
        message |= {"type": "image", "image": {
            "caption": _words(rng, rng.randint(2, 15)), "mime_type": "image/jpeg",
            "sha256": hashlib.sha256(f"{serial}{n}".encode()).hexdigest(), "id": str(rng.randint(10**15, 10**16))}}
    else:
        message |= {"type": "location", "location": {
            "latitude": round(rng.uniform(-30, -3), 6), "longitude": round(rng.uniform(-60, -35), 6),
            "name": _words(rng, 3), "address": _words(rng, 6)}}
    if rng.random() < 0.3:
        message["context"] = {"from": NUMBER["display_phone_number"], "id": f"wamid.HBgOURS{rng.randint(10**9, 10**10)}"}
    if rng.random() < 0.1:
        message["referral"] = {"source_url": "https://fb.me/3cr4Wqqkk", "source_id": str(rng.randint(10**10, 10**11)),
                               "source_type": "ad", "headline": _words(rng, 4), "body": _words(rng, 12),
                               "media_type": "image", "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/518.jpg",
                               "ctwa_clid": uuid.uuid4().hex}
    return message


def _status(rng: random.Random, serial: str, n: int, ts: str) -> dict:
    state = rng.choices(("sent", "delivered", "read", "failed"), weights=(30, 40, 25, 5))[0]
    status = {"id": _wamid(serial, n), "status": state, "timestamp": ts,
              "recipient_id": f"55119{rng.randint(10**7, 10**8 - 1)}"}
    if state == "failed":
        status["errors"] = [{"code": 131047, "title": "Re-engagement message",
                             "message": "Re-engagement message", "error_data": {
                                 "details": "Message failed to send because more than 24 hours have passed since "
                                            "the customer last replied to this number."},
                             "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
    else:
        conversation = {"id": hashlib.md5(f"{serial}{n}".encode()).hexdigest(),
                        "origin": {"type": rng.choice(("utility", "marketing", "service"))}}
        if state == "sent":
            conversation["expiration_timestamp"] = str(int(ts) + 86400)
        status["conversation"] = conversation
        status["pricing"] = {"billable": True, "pricing_model": "PMP", "category": conversation["origin"]["type"],
                             "type": "regular"}
    if rng.random() < 0.2:
        status["biz_opaque_callback_data"] = f"campaign:{rng.randint(1, 999)}"
    return status


def make_payload(rng: random.Random, serial: str) -> bytes:
    """One Meta delivery of 1-3 KB: inbound messages, a status batch, or one change of each."""
    ts = str(int(time.time()) - rng.randint(0, 30))
    metadata = {"display_phone_number": NUMBER["display_phone_number"], "phone_number_id": NUMBER["phone_number_id"]}
    kind = rng.choices(("messages", "statuses", "both"), weights=(45, 45, 10))[0]
    changes: list[dict] = []
    items: list[list] = []
    if kind in ("messages", "both"):
        wa_id = f"55119{rng.randint(10**7, 10**8 - 1)}"
        value = {"messaging_product": "whatsapp", "metadata": metadata,
                 "contacts": [{"profile": {"name": rng.choice(NAMES)}, "wa_id": wa_id}], "messages": []}
        changes.append({"value": value, "field": "messages"})
        items.append(value["messages"])
    if kind in ("statuses", "both"):
        value = {"messaging_product": "whatsapp", "metadata": metadata, "statuses": []}
        changes.append({"value": value, "field": "messages"})
        items.append(value["statuses"])
    document = {"object": "whatsapp_business_account", "entry": [{"id": NUMBER["waba_id"], "changes": changes}]}

    def encoded() -> bytes:
        # Meta's bytes: compact, non-ASCII escaped as \\uXXXX.
        return json.dumps(document, separators=(",", ":")).encode()

    target = rng.randint(1024, 3000)
    n = 0
    while True:
        for bucket in items:
            n += 1
            if bucket is items[0] and kind != "statuses":
                bucket.append(_inbound(rng, serial, n, changes[0]["value"]["contacts"][0]["wa_id"], ts))
            else:
                bucket.append(_status(rng, serial, n, ts))
        body = encoded()
        if len(body) >= target:
            break
    while len(body) > 3072 and max(len(b) for b in items) > 1:
        max(items, key=len).pop()
        body = encoded()
    return body


def build_request(port: int, body: bytes, secret: bytes) -> bytes:
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: facebookexternalua\r\n"
            f"Accept: */*\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


# -- the load generator (runs in forked processes) -----------------------------------------------------


class Connection:
    """A lean HTTP/1.1 client: keep-alive when the server allows it (gunicorn's sync workers do not)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        reused = self.sock is not None
        try:
            return self._exchange(request)
        except (ConnectionError, OSError):
            self.close()
            if not reused:
                raise
            return self._exchange(request)  # a kept-alive socket the server had closed: once more, fresh

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = self._open()
        sock = self.sock
        sock.sendall(request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection before answering")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = None, lines[0].startswith(b"HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        while length is None or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                if length is None:
                    break
                raise ConnectionError("the server closed the connection mid-body")
            body += chunk
        if close or length is None:
            self.close()
        return status, body

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclass
class Result:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)  # open loop: from the scheduled send time
    started: float = float("inf")
    finished: float = 0.0
    unsent: int = 0
    client_cpu: float = 0.0  # CPU seconds the senders spent in the timed phase
    server_cpu: float = 0.0  # CPU seconds of the server's workers in the closed loop
    machine_cpu: float = 0.0  # CPU seconds of the whole machine (every process) in the closed loop

    def merge(self, other: "Result") -> None:
        self.ok += other.ok
        for key, count in other.errors.items():
            self.errors[key] = self.errors.get(key, 0) + count
        self.latencies_ms += other.latencies_ms
        self.started = min(self.started, other.started)
        self.finished = max(self.finished, other.finished)
        self.unsent += other.unsent
        self.client_cpu += other.client_cpu


def _check(result: Result, status: int, body: bytes) -> None:
    if status == 200 and b'"received"' in body:
        result.ok += 1
    else:
        key = f"{status} {body[:80].decode(errors='replace')}"
        result.errors[key] = result.errors.get(key, 0) + 1


def client_process(mode: str, port: int, secret: bytes, count: int, index: int, clients: int,
                   barrier, go, start_at, out) -> None:
    """Build this sender's requests, wait for every sender, then run the closed or the open loop."""
    rng = random.Random(f"{port}-{mode}-{index}")
    tag = uuid.uuid4().hex[:10]
    requests_ = [build_request(port, make_payload(rng, f"{tag}{n:05d}"), secret) for n in range(count)]
    result = Result()
    connection = Connection(port)
    barrier.wait()
    go.wait()
    cpu = time.process_time()
    try:
        if mode == "closed":
            deadline = time.perf_counter() + CLOSED_SECONDS
            result.started = time.perf_counter()
            for n, request in enumerate(requests_):
                if time.perf_counter() > deadline:
                    result.unsent = count - n
                    break
                try:
                    _check(result, *connection.exchange(request))
                except OSError as exc:
                    result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
            result.finished = time.perf_counter()
        else:
            interval = clients / OPEN_RATE
            begin = start_at.value + index * interval / clients  # senders interleave evenly
            deadline = start_at.value + OPEN_SECONDS + 10
            result.started = begin
            for n, request in enumerate(requests_):
                scheduled = begin + n * interval
                now = time.perf_counter()
                if now > deadline:
                    result.unsent = count - n
                    break
                if scheduled > now:
                    time.sleep(scheduled - now)
                try:
                    status, body = connection.exchange(request)
                except OSError as exc:
                    result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
                    continue
                done = time.perf_counter()
                _check(result, status, body)
                result.latencies_ms.append((done - scheduled) * 1000)
            result.finished = time.perf_counter()
    finally:
        result.client_cpu = time.process_time() - cpu
        connection.close()
        out.put(result)


def run_load(mode: str, port: int, secret: bytes, total: int, clients: int) -> Result:
    ctx = multiprocessing.get_context("fork")
    barrier, go = ctx.Barrier(clients + 1), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    out = ctx.Queue()
    shares = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    processes = [ctx.Process(target=client_process, args=(mode, port, secret, shares[i], i, clients, barrier,
                                                          go, start_at, out), daemon=True) for i in range(clients)]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)  # every sender has built its requests
    start_at.value = time.perf_counter() + 0.05  # the open loop's time zero, set before the senders go
    go.set()
    merged = Result()
    for _ in processes:
        merged.merge(out.get(timeout=CLOSED_SECONDS + OPEN_SECONDS + 60))
    for process in processes:
        process.join(timeout=10)
    return merged


# -- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def cpu_seconds(self) -> float:
        """User and system CPU of the master and its workers so far."""
        master = psutil.Process(self.process.pid)
        return sum(sum(p.cpu_times()[:2]) for p in [master, *master.children(recursive=True)])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: gunicorn's graceful shutdown (--graceful-timeout 5)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_gunicorn(name: str, module: str, cwd: Path, env: dict[str, str], work_dir: Path) -> Server:
    """The Procfile's web line, minus the access log: gunicorn -c gunicorn.conf.py (the project's web settings).

    Each master gets a control socket of its own: gunicorn's default, $HOME/.gunicorn/gunicorn.ctl, is one
    path for every gunicorn of the user, so a bench server would take over (and on exit delete) the one of
    a `make run` in progress. The socket only serves `gunicornc`; requests never touch it.
    """
    port = free_port()
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    log_path = work_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [gunicorn, "-c", str(PROJECT_ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
             "--control-socket", str(work_dir / f"{name}.ctl"), module],
            cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    return Server(name, port, process, log_path)


def wait_ready(server: Server, secret: bytes) -> None:
    """Both workers booted and answering: one signed request until it succeeds, then sequential warm-up."""
    deadline = time.monotonic() + 60
    rng = random.Random(f"ready-{server.port}")
    while True:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            status, body = Connection(server.port).exchange(
                build_request(server.port, make_payload(rng, uuid.uuid4().hex[:15]), secret))
            if status == 200:
                return
            raise SystemExit(f"{server.name} answered {status}: {body[:300]!r}\n{server.log_tail()}")
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{server.name} did not answer within 60 s:\n{server.log_tail()}")
            time.sleep(0.2)


# -- the run --------------------------------------------------------------------------------


def median_round(rounds: list["Result"]) -> "Result":
    """The round with the median rate (its CPU figures with it)."""
    return sorted(rounds, key=lambda r: r.ok / (r.finished - r.started) if r.finished > r.started else 0.0)[
        len(rounds) // 2]


def machine_cpu_seconds() -> float:
    """CPU seconds every core has spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    load_before = os.getloadavg()[0]
    base = Settings.from_env()
    admin = make_url(base.database_url)
    name = f"pytake_bench_{uuid.uuid4().hex[:8]}"
    plain_admin = admin.set(drivername="postgresql").render_as_string(False)
    redis_url = make_url(base.redis_url).set(database=str(REDIS_DB)).render_as_string(hide_password=False)
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = base.with_overrides(
        database_url=admin.set(database=name).render_as_string(hide_password=False), redis_url=redis_url,
        log_level="WARNING",
    )
    use_settings(settings)
    configure_logging(settings)
    broker = redis.Redis.from_url(redis_url)
    queue_keys_before = set(broker.scan_iter(match=f"*{WEBHOOKS}*"))
    servers: list[Server] = []
    work_dir = Path(tempfile.mkdtemp(prefix="pytake-bench-webhooks-"))
    try:
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.attributes.update(database_url=settings.database_url, skip_logging_config=True)
        command.upgrade(config, "head")
        secret = create_number()

        (work_dir / "bare_webhook.py").write_text(BARE_APP)
        env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": redis_url,
               "PYTHONPATH": str(PROJECT_ROOT)}
        if SERVER_LOG_LEVEL:
            env["LOG_LEVEL"] = SERVER_LOG_LEVEL
        bare_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        servers.append(start_gunicorn("bare", "bare_webhook:app", work_dir, bare_env, work_dir))
        servers.append(start_gunicorn("intake", "wsgi:app", PROJECT_ROOT, env, work_dir))
        for server in servers:
            wait_ready(server, secret)
            run_load("closed", server.port, secret, WARMUP, CLOSED_CLIENTS)  # both workers warm, pools full

        figures = {}
        for _ in range(ROUNDS):  # interleaved, so a disturbance of the machine touches both servers alike
            for server in servers:
                server_cpu, machine_cpu = server.cpu_seconds(), machine_cpu_seconds()
                closed = run_load("closed", server.port, secret, REQUESTS, CLOSED_CLIENTS)
                closed.server_cpu = server.cpu_seconds() - server_cpu
                closed.machine_cpu = machine_cpu_seconds() - machine_cpu
                figures.setdefault((server.name, "closed"), []).append(closed)
                time.sleep(0.5)
        for server in servers:
            figures[server.name, "closed"] = median_round(figures[server.name, "closed"])
        for server in servers:
            opened = run_load("open", server.port, secret, int(OPEN_RATE * OPEN_SECONDS), OPEN_CLIENTS)
            figures[server.name, "open"] = opened
            time.sleep(1)
        for server in servers:
            if server.process.poll() is not None:
                raise SystemExit(f"{server.name} died during the run:\n{server.log_tail()}")
        stored, queued = count_intake_effects(broker)
        report(figures, stored, queued, load_before)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
        from shared import db

        db.dispose_engine()
        with psycopg.connect(plain_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        # The publishes nobody consumed: the webhooks queue and kombu's bindings for it (the bench's Redis database).
        from shared.services.webhooks import BAD_SIGNATURE_COUNTER

        created = set(broker.scan_iter(match=f"*{WEBHOOKS}*")) - queue_keys_before
        broker.delete(*created, BAD_SIGNATURE_COUNTER)
        broker.close()


def create_number() -> bytes:
    from shared.db import unit_of_work
    from shared.models import Organization
    from shared.services import numbers

    with unit_of_work() as session:
        org = Organization(name="Webhook intake bench", plan_code="enterprise")
        session.add(org)
        session.flush()
        numbers.create_number(session, org=org, **NUMBER)
    return NUMBER["app_secret"].encode()


def count_intake_effects(broker: redis.Redis) -> tuple[int, int]:
    from shared.db import unit_of_work
    from shared.models import WebhookEvent

    with unit_of_work() as session:
        stored = session.execute(select(func.count()).select_from(WebhookEvent)).scalar_one()
    return stored, broker.llen(WEBHOOKS)


def report(figures: dict[tuple[str, str], Result], stored: int, queued: int, load_before: float) -> None:
    def rate(result: Result) -> float:
        return result.ok / (result.finished - result.started) if result.finished > result.started else 0.0

    def pct(result: Result, p: float) -> float:
        return percentile(result.latencies_ms, p) if result.latencies_ms else float("nan")

    def row(label: str, bare: str, intake: str, target: str = "") -> None:
        print(f"{label:<44}{bare:>12}{intake:>12}   {target}".rstrip())

    sizes = [len(make_payload(random.Random(n), f"{n:015d}")) for n in range(500)]
    bare_closed, intake_closed = figures["bare", "closed"], figures["intake", "closed"]
    bare_open, intake_open = figures["bare", "open"], figures["intake", "open"]
    ratio = rate(intake_closed) / rate(bare_closed) if rate(bare_closed) else 0.0
    p99 = pct(intake_open, 99)
    print(f"POST {PATH}: gunicorn -c gunicorn.conf.py ({WORKERS} workers x {THREADS} threads), {os.cpu_count()} CPUs, "
          f"load average {load_before:.2f} before the run")
    print(f"payloads {min(sizes)}-{max(sizes)} B (median {statistics.median(sizes):.0f} B), each unique and signed")
    row("", "bare Flask", "intake", "target")
    row(f"max rate, closed loop ({REQUESTS} req, {CLOSED_CLIENTS} conns, median of {ROUNDS})",
        f"{rate(bare_closed):.0f}/s", f"{rate(intake_closed):.0f}/s")
    row("intake / bare rate", "", f"{ratio:.0%}", f">= {TARGET_RATIO:.0%}  {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
    row(f"open loop at {OPEN_RATE:.0f} req/s for {OPEN_SECONDS:.0f} s: achieved",
        f"{rate(bare_open):.0f}/s", f"{rate(intake_open):.0f}/s")
    row("  p50 latency (from scheduled send)", f"{pct(bare_open, 50):.2f} ms", f"{pct(intake_open, 50):.2f} ms")
    row("  p99 latency", f"{pct(bare_open, 99):.2f} ms", f"{p99:.2f} ms",
        f"< {TARGET_P99_MS:.0f} ms  {'PASS' if p99 < TARGET_P99_MS else 'FAIL'}")
    row("  p99.9 latency", f"{pct(bare_open, 99.9):.2f} ms", f"{pct(intake_open, 99.9):.2f} ms")
    for name, result in (("bare Flask", bare_open), ("intake", intake_open)):
        if rate(result) < 0.95 * OPEN_RATE:
            print(f"  {name} could not keep up with {OPEN_RATE:.0f} req/s: its latency above is mostly waiting in line")
    for (server, mode), result in sorted(figures.items()):
        if result.errors or result.unsent:
            print(f"  {server}, {mode} loop: {sum(result.errors.values())} failed {dict(list(result.errors.items())[:3])}, "
                  f"{result.unsent} not sent within the time bound")
    per_request = [1e6 * r.client_cpu / max(1, r.ok + sum(r.errors.values())) for r in (bare_closed, intake_closed)]
    print(f"load generator CPU per request (closed loop): bare {per_request[0]:.0f} us, intake {per_request[1]:.0f} us")
    served = [max(1, r.ok + sum(r.errors.values())) for r in (bare_closed, intake_closed)]
    print(f"web workers' CPU per request (closed loop): bare {1e6 * bare_closed.server_cpu / served[0]:.0f} us, "
          f"intake {1e6 * intake_closed.server_cpu / served[1]:.0f} us; the whole machine's (PostgreSQL, Redis and the "
          f"load generator included): bare {1e6 * bare_closed.machine_cpu / served[0]:.0f} us, "
          f"intake {1e6 * intake_closed.machine_cpu / served[1]:.0f} us")
    print(f"intake effects: {stored} webhook_events rows, {queued} webhooks.drain tasks published (one per idle period, not per request) "
          f"(no worker; both deleted at the end)")

if __name__ == "__main__":
    main()
