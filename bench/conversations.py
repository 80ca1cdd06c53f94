"""Benchmark: conversations against the Cloud API sandbox, end to end, in one run.

Run with `make bench`, or on its own:

    .venv/bin/python -m shared.embedded -- .venv/bin/python bench/conversations.py

What runs (every process a subprocess, stopped at the end whatever happens):
- the sandbox (`python -m sandbox`, a free port, log_limit raised so nothing is dropped),
- web as in the Procfile (`gunicorn -c gunicorn.conf.py wsgi:app`, no access log),
- a `webhooks` pool and a `sends` pool as in the Procfile (`celery -A workers.app worker -Q <queue> -n <name>@%h
  --concurrency C --prefetch-multiplier 1 --without-gossip --without-mingle`), with WHATSAPP_API_BASE pointing at
  the sandbox and LOG_LEVEL=WARNING. C: BENCH_WEBHOOKS_CONCURRENCY and BENCH_SENDS_CONCURRENCY, by default the
  Procfile's (2 and 4: one drain runs at a time; a sends child serves one number's dispatcher at a time).

Data: it migrates the configured database (`alembic upgrade head`: the developer's `make run` data), works in an
organization of its own (plan enterprise, no agents) with 2 numbers registered both in PyTake and in the sandbox
(same token and app secret; the sandbox posts its signed webhooks to web), and at the end deletes the webhook_events
rows it produced, then the organization (cascades remove its contacts, conversations, messages, numbers), and its
MongoDB event-log entries. Celery and the limiter use a Redis database index of their own (BENCH_REDIS_DB,
default 12) whose queue, binding, unacked, reply and limiter keys are deleted at the end.

Phases and targets:
1. inbound: BENCH_CONTACTS (1,000) customers (wa_ids 1650555xxxx), half on each number, write through the
   sandbox's inbound API (the sandbox numbers' throughput is raised: inbound counts toward it).
   a. latency: BENCH_LATENCY_RATE (100) messages/s for BENCH_LATENCY_SECONDS (15 s), one message per webhook
      (as Meta sends at low volume), paced open-loop by BENCH_LATENCY_SENDERS threads; latency = the stored row
      minus the wall-clock time just before the POST to the sandbox, to `messages.created_at` (DB now(): the
      transaction's start) and to the commit (the last webhook row `processed_at` set in the transaction that
      stored it, found by the rows' shared xmin: set just before it commits); target p95 < 1 s, judged on the latter.
   b. rate: BENCH_INBOUND_MESSAGES (5,000) messages, BENCH_INBOUND_BATCH (50) per webhook (Meta batches under
      load), posted by BENCH_INBOUND_SENDERS threads as fast as the sandbox takes them;
      rate = messages / (first POST -> last commit); target >= 500 messages/s.
   Both print how often a database backend waited on an advisory lock (the per-number inbound lock and the
   per-organization assignment lock are advisory).
2. outbound pacing: both numbers at BENCH_PACING_MPS (80) messages/s in PyTake (whatsapp_numbers.throughput_mps)
   and in the sandbox; every customer's window is open (phase 1). 2 x 80 x BENCH_PACING_SECONDS (60) text messages
   are queued through `messages.queue_message` (sender_type BENCH_SENDER_TYPE, default campaign: bulk traffic
   that takes only near-free limiter slots) while the sends pool does not consume (Celery cancel_consumer), then
   the pool drains the backlog, so what is measured is the pacing of a full queue, not this process's queueing.
   Achieved rate per number from the sandbox's own request log (when each accepted send arrived) over the steady
   part (the middle BENCH_STEADY_FRACTION, 90%, of that number's sends); target within 2% of 80, and zero 130429
   (every refusal the sandbox answered, by code, from the same log).
3. outbound ceiling: both numbers at BENCH_CEILING_MPS (1,000)/s; BENCH_CEILING_MESSAGES (10,000) queued while the
   pool does not consume, then drained; rate = messages / (resume -> last `sent`, our sent_at); target >= 500/s.
BENCH_PHASES (default inbound,pacing,ceiling) picks the phases; without inbound, every customer writes once
first so that every window is open.

Queueing is one transaction per message (as POST /conversations/{id}/messages does), from BENCH_QUEUE_THREADS (2)
threads; each commit arms the number's dispatcher (one publish while none holds its lease).
The sandbox's pair-rate limit is set out of the way (it is not what is measured); its status webhooks for the
outbound phases are BENCH_OUTBOUND_STATUSES (default none; comma-separated among sent,delivered,read), since each
status is one more webhook through web and the webhooks pool, competing for the same two cores.
Every phase prints the CPU each process used (from /proc: a process, its children and the children it reaped;
postgres, redis and mongodb found through the embedded engines' pid files), so the figures say where time goes.
BENCH_KEEP_LOGS=1 keeps the processes' logs (pools at LOG_LEVEL=INFO) in a temporary directory.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared.embedded import free_port
from shared.settings import PROJECT_ROOT, Settings, use_settings

CONTACTS = int(os.environ.get("BENCH_CONTACTS", "1000"))
LATENCY_RATE = float(os.environ.get("BENCH_LATENCY_RATE", "100"))
LATENCY_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "15"))
LATENCY_SENDERS = int(os.environ.get("BENCH_LATENCY_SENDERS", "4"))
INBOUND_MESSAGES = int(os.environ.get("BENCH_INBOUND_MESSAGES", "5000"))
INBOUND_BATCH = int(os.environ.get("BENCH_INBOUND_BATCH", "50"))
INBOUND_SENDERS = int(os.environ.get("BENCH_INBOUND_SENDERS", "4"))
PACING_MPS = int(os.environ.get("BENCH_PACING_MPS", "80"))
PACING_SECONDS = float(os.environ.get("BENCH_PACING_SECONDS", "60"))
STEADY_FRACTION = float(os.environ.get("BENCH_STEADY_FRACTION", "0.9"))
CEILING_MPS = int(os.environ.get("BENCH_CEILING_MPS", "1000"))
CEILING_MESSAGES = int(os.environ.get("BENCH_CEILING_MESSAGES", "10000"))
QUEUE_THREADS = int(os.environ.get("BENCH_QUEUE_THREADS", "2"))
SENDER_TYPE = os.environ.get("BENCH_SENDER_TYPE", "campaign")
OUTBOUND_STATUSES = [s for s in os.environ.get("BENCH_OUTBOUND_STATUSES", "").split(",") if s.strip()]
# The Procfile's defaults (task events on, as Flower needs them), so the figures are what `make run` gives.
WEBHOOKS_CONCURRENCY = int(os.environ.get("BENCH_WEBHOOKS_CONCURRENCY", os.environ.get("WORKER_CONCURRENCY", "2")))
SENDS_CONCURRENCY = int(os.environ.get("BENCH_SENDS_CONCURRENCY", os.environ.get("SENDS_CONCURRENCY", "4")))
WEB_WORKERS = os.environ.get("WEB_CONCURRENCY") or "2"
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "12"))
PHASES = set(os.environ.get("BENCH_PHASES", "inbound,pacing,ceiling").split(","))
PHASE_TIMEOUT = float(os.environ.get("BENCH_PHASE_TIMEOUT_SECONDS", "1200"))

TARGET_INBOUND_RATE = 500.0
TARGET_P95_SECONDS = 1.0
TARGET_PACING_TOLERANCE = 0.02
TARGET_CEILING_RATE = 500.0


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def check(self) -> None:
        if not self.alive():
            raise SystemExit(f"{self.name} exited ({self.process.returncode}):\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (gunicorn and celery shut down gracefully), then SIGKILL to what is left of its own processes."""
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            family = []
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for member in family:  # children a hard stop left behind, by the pids seen before it
            try:
                if member.is_running():
                    member.kill()
            except psutil.Error:
                pass


def start(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return Proc(name, process, log_path)


def bin_path(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def celery_pool(queue: str, concurrency: int, env: dict[str, str], log_dir: Path) -> Proc:
    if os.environ.get("BENCH_KEEP_LOGS"):
        env = {**env, "LOG_LEVEL": "INFO"}
    return start(f"{queue}-pool", [
        bin_path("celery"), "-A", "workers.app", "worker", "-Q", queue, "-n", f"bench-{queue}@%h",
        "--concurrency", str(concurrency), "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "-E",
        "--loglevel", "INFO" if os.environ.get("BENCH_KEEP_LOGS") else "WARNING"], env, log_dir)


def wait_http(proc: Proc, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        proc.check()
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n{proc.log_tail()}")
        time.sleep(0.2)


def wait_pool(proc: Proc, queue: str, timeout: float = 60) -> None:
    """A `<queue>.ping` round trip: the pool consumes."""
    from shared.queueing.celery_app import celery_app
    from shared.queueing.names import ping_task

    deadline = time.monotonic() + timeout
    while True:
        proc.check()
        result = celery_app.send_task(ping_task(queue), kwargs={"org_id": None}, queue=queue, expires=5)
        try:
            result.get(timeout=3)
            result.forget()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise SystemExit(f"{proc.name} never answered a ping:\n{proc.log_tail()}")


# -- CPU accounting --------------------------------------------------------------------------------


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live descendants and the children it has reaped."""
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in members:
        try:
            times = member.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass
    return total


def _own_cpu() -> float:
    """This process alone (its children are the processes measured on their own)."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


class CpuMeter:
    """CPU seconds per component between two marks (embedded engines found through their pid files)."""

    def __init__(self, procs: dict[str, Proc]):
        self.pids = {name: proc.process.pid for name, proc in procs.items()}
        self.pids["bench"] = os.getpid()
        data_dir = Path(os.environ.get("PYTAKE_DATA_DIR", PROJECT_ROOT / "var"))
        for name, pid_file in (("postgres", data_dir / "postgres" / "data" / "postmaster.pid"),
                               ("redis", data_dir / "redis" / "redis.pid"),
                               ("mongodb", data_dir / "mongodb" / "nx-27017.pid")):
            try:
                self.pids[name] = int(pid_file.read_text().split("\n", 1)[0].strip())
            except (OSError, ValueError):
                pass

    def sample(self) -> dict[str, float]:
        sample = {name: _own_cpu() if name == "bench" else _tree_cpu(pid) for name, pid in self.pids.items()}
        for name in ("webhooks", "sends"):  # a pool's main process alone: receiving, dispatching, acking, events
            try:
                times = psutil.Process(self.pids[name]).cpu_times()
                sample[f"_{name}_main"] = times.user + times.system
            except (KeyError, psutil.Error):
                pass
        sample["_wall"] = time.perf_counter()
        return sample

    @staticmethod
    def line(before: dict[str, float], after: dict[str, float], messages: int) -> str:
        wall = after["_wall"] - before["_wall"]
        parts, total = [], 0.0
        for name in before:
            if name.startswith("_"):
                continue
            used = after.get(name, 0.0) - before[name]
            total += used
            main = f"_{name}_main"
            if main in before and used > 0.05 * wall:
                parts.append(f"{name} {used / wall * 100:.0f}% (main process {(after[main] - before[main]) / wall * 100:.0f}%)")
            else:
                parts.append(f"{name} {used / wall * 100:.0f}%")
        per = f", {total / messages * 1000:.1f} ms CPU per message" if messages else ""
        return (f"    CPU over {wall:.0f} s (100% = one core; {os.cpu_count()} cores): {', '.join(parts)}; "
                f"total {total / wall * 100:.0f}%{per}")


class LockSampler:
    """Samples pg_stat_activity every 0.1 s: how often a backend of this database waits on an advisory lock
    (the inbound pipeline's per-number and per-organization assignment locks are advisory)."""

    def __init__(self) -> None:
        self.samples = self.waiting_samples = self.waiting = self.active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "LockSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from shared.db import unit_of_work

        while not self._stop.wait(0.1):
            with unit_of_work() as session:
                waiting, active = session.execute(text(
                    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'), "
                    "count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()) "
                    "FROM pg_stat_activity WHERE datname = current_database()")).one()
            self.samples += 1
            self.waiting_samples += 1 if waiting else 0
            self.waiting += waiting
            self.active += active

    def line(self) -> str:
        if not self.samples:
            return "    advisory locks: no samples"
        return (f"    advisory-lock waits: {self.waiting_samples / self.samples:.0%} of {self.samples} samples had a "
                f"backend waiting (avg {self.waiting / self.samples:.2f} waiting, "
                f"{self.active / self.samples:.2f} active queries)")


# -- the sandbox's control API ----------------------------------------------------------------------


class Sandbox:
    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs):
        response = self.http.request(method, f"{self.base}/_sandbox{path}", timeout=120, **kwargs)
        if response.status_code >= 400:
            raise SystemExit(f"sandbox {method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def number(self, phone_number_id: str, **knobs) -> None:
        self.call("PATCH", f"/numbers/{phone_number_id}", json=knobs)

    def message_requests(self) -> list[dict]:
        return self.call("GET", "/requests", params={"kind": "messages"})["data"]


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class World:
    org_id: uuid.UUID
    numbers: list[dict]  # phone_number_id, id (ours), waba_id, ...
    customers: list[str]
    number_of: dict[str, int] = field(default_factory=dict)  # wa_id -> index into numbers


def main() -> None:
    # A SIGTERM (timeout, kill) unwinds like an exception, so `finally` stops every process started here: a
    # pool left behind would consume the next run's tasks with this run's sandbox address.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base = Settings.from_env()
    redis_url = make_url(base.redis_url).set(database=str(REDIS_DB)).render_as_string(hide_password=False)
    os.environ["REDIS_URL"] = redis_url  # celeryconfig reads the settings when first imported: set it first
    os.environ["LOG_LEVEL"] = "WARNING"
    settings = Settings.from_env()
    use_settings(settings)
    from shared.logs import configure_logging

    configure_logging(settings)

    migrate = subprocess.run([bin_path("alembic"), "upgrade", "head"], cwd=PROJECT_ROOT, env=dict(os.environ),
                             capture_output=True, text=True)
    if migrate.returncode != 0:
        raise SystemExit(f"alembic upgrade head failed:\n{migrate.stdout}\n{migrate.stderr}")

    broker = redis.Redis.from_url(redis_url)
    log_dir = Path(tempfile.mkdtemp(prefix="pytake-bench-conversations-"))
    procs: dict[str, Proc] = {}
    world: World | None = None
    sandbox: Sandbox | None = None
    failed = True
    try:
        sandbox_port, web_port = free_port(), free_port()
        env = {**os.environ, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(PROJECT_ROOT),
               "WHATSAPP_API_BASE": f"http://127.0.0.1:{sandbox_port}"}
        procs["sandbox"] = start("sandbox", [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port",
                                             str(sandbox_port), "--quiet"], env, log_dir)
        procs["web"] = start("web", [bin_path("gunicorn"), "-c", str(PROJECT_ROOT / "gunicorn.conf.py"),
                                     "--bind", f"127.0.0.1:{web_port}", "wsgi:app"], env, log_dir)
        procs["webhooks"] = celery_pool("webhooks", WEBHOOKS_CONCURRENCY, env, log_dir)
        procs["sends"] = celery_pool("sends", SENDS_CONCURRENCY, env, log_dir)
        sandbox_url, web_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{web_port}"
        wait_http(procs["sandbox"], f"{sandbox_url}/_sandbox/config")
        wait_http(procs["web"], f"{web_url}/readyz")
        wait_pool(procs["webhooks"], "webhooks")
        wait_pool(procs["sends"], "sends")
        sandbox = Sandbox(sandbox_url)
        sandbox.call("PATCH", "/config", json={"log_limit": 1_000_000})

        world = create_world(sandbox, f"{web_url}/api/v1/webhooks/whatsapp")
        meter = CpuMeter(procs)
        print(f"conversations bench: {os.cpu_count()} CPUs; web gunicorn -c gunicorn.conf.py ({WEB_WORKERS} workers); pools: webhooks "
              f"--concurrency {WEBHOOKS_CONCURRENCY}, sends --concurrency {SENDS_CONCURRENCY} (prefork, prefetch 1); "
              f"{CONTACTS} customers over 2 numbers", flush=True)
        warm_up(sandbox, world, procs)

        summary = []
        if "inbound" in PHASES:
            summary += report_inbound(inbound_latency(sandbox, world, procs, meter),
                                      inbound_rate(sandbox, world, procs, meter))
        else:
            open_windows(sandbox, world, procs)
        if "pacing" in PHASES:
            summary += report_pacing(outbound_pacing(sandbox, world, procs, meter))
        if "ceiling" in PHASES:
            summary += report_ceiling(outbound_ceiling(sandbox, world, procs, meter))
        for proc in procs.values():
            proc.check()
        print()
        print(f"summary ({os.cpu_count()} CPUs; webhooks pool --concurrency {WEBHOOKS_CONCURRENCY}, sends pool "
              f"--concurrency {SENDS_CONCURRENCY}; sender_type {SENDER_TYPE}; sandbox status webhooks "
              f"{','.join(OUTBOUND_STATUSES) or 'none'})")
        for line in summary:
            print(f"  {line}")
        failed = False
    finally:
        if failed:
            for proc in procs.values():
                if proc.name != "sandbox":
                    print(f"--- {proc.name} log (tail) ---\n{proc.log_tail(15)}", file=sys.stderr)
        if sandbox is not None and world is not None:
            try:  # no more webhooks toward web, and none left in flight
                for number in world.numbers:
                    sandbox.number(number["phone_number_id"], callback_url=None)
                sandbox.call("POST", "/drain", json={"timeout": 30})
            except (SystemExit, requests.RequestException):
                pass
        for name in ("sends", "webhooks", "web", "sandbox"):
            if name in procs:
                procs[name].stop()
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"process logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
        cleanup(world, broker)


def create_world(sandbox: Sandbox, callback_url: str) -> World:
    from shared.db import unit_of_work
    from shared.models import Organization
    from shared.services import numbers

    rng = random.Random()
    app_secret = f"bench-conversations-secret-{uuid.uuid4().hex}"
    specs = []
    waba_id = str(10**14 + rng.randrange(9 * 10**14))
    for index in range(2):
        specs.append({"waba_id": waba_id, "phone_number_id": str(10**14 + rng.randrange(9 * 10**14)),
                      "display_phone_number": f"1555{rng.randrange(10**7):07d}",
                      "access_token": f"EAAG-bench-conversations-{uuid.uuid4().hex}", "app_secret": app_secret})
    with unit_of_work() as session:
        org = Organization(name="Conversations bench", plan_code="enterprise")
        session.add(org)
        session.flush()
        org_id = org.id
        for spec in specs:
            number = numbers.create_number(session, org=org, throughput_mps=PACING_MPS, **spec)
            spec["id"] = number.id
    for spec in specs:
        sandbox.call("POST", "/numbers", json={
            **{k: v for k, v in spec.items() if k != "id"}, "callback_url": callback_url,
            "throughput_mps": 100_000, "pair_rate_interval_seconds": 3600, "pair_rate_burst": 1_000_000,
            "auto_statuses": OUTBOUND_STATUSES})
    customers = [f"1650555{n:04d}" for n in range(CONTACTS)]
    world = World(org_id=org_id, numbers=specs, customers=customers)
    world.number_of = {wa_id: n % 2 for n, wa_id in enumerate(customers)}
    return world


def _post_inbound(http: requests.Session, sandbox: Sandbox, phone_number_id: str, messages: list[dict]) -> list[str]:
    response = http.post(f"{sandbox.base}/_sandbox/numbers/{phone_number_id}/inbound", timeout=60,
                         json={"messages": messages} if len(messages) > 1 else messages[0])
    if response.status_code != 200:
        raise RuntimeError(f"sandbox inbound: {response.status_code} {response.text[:300]}")
    return response.json()["message_ids"]


def _text(wa_id: str, body: str) -> dict:
    return {"from": wa_id, "type": "text", "text": {"body": body}, "name": f"Customer {wa_id[-4:]}"}


def _committed(org_id: uuid.UUID, wamids: list[str]) -> dict[str, float]:
    """wamid -> messages.created_at (epoch seconds) for those stored so far."""
    from shared.db import unit_of_work

    found: dict[str, float] = {}
    with unit_of_work() as session:
        for start in range(0, len(wamids), 5000):
            rows = session.execute(text(
                "SELECT wamid, created_at FROM messages WHERE wamid = ANY(:wamids) AND organization_id = :org"),
                {"wamids": wamids[start:start + 5000], "org": org_id}).all()
            found.update({row[0]: row[1].timestamp() for row in rows})
    return found


def _wait_committed(org_id: uuid.UUID, wamids: list[str], procs: dict[str, Proc], what: str) -> dict[str, float]:
    deadline = time.monotonic() + PHASE_TIMEOUT
    while True:
        found = _committed(org_id, wamids)
        if len(found) == len(wamids):
            return found
        for proc in procs.values():
            proc.check()
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: only {len(found)} of {len(wamids)} messages stored in {PHASE_TIMEOUT:.0f} s")
        time.sleep(0.25)


def _processed_at(org_id: uuid.UUID, since: float) -> dict[str, float]:
    """wamid -> when the transaction that stored it was about to commit.

    A processor applies the payloads of its number that wait before its own in the same transaction, so the
    commit time of a payload is the last `processed_at` set in that transaction: the rows it updated share
    their `xmin` (the transaction id).
    """
    from shared.db import unit_of_work

    with unit_of_work() as session:
        rows = session.execute(text(
            "SELECT xmin::text, processed_at, body FROM webhook_events WHERE organization_id = :org "
            "AND created_at >= :since AND processed_at IS NOT NULL"),
            {"org": org_id, "since": dt.datetime.fromtimestamp(since - 1, dt.timezone.utc)}).all()
    last_in_transaction: dict[str, float] = collections.defaultdict(float)
    for xid, processed_at, _ in rows:
        last_in_transaction[xid] = max(last_in_transaction[xid], processed_at.timestamp())
    out: dict[str, float] = {}
    for xid, _, body in rows:
        payload = json.loads(bytes(body))
        for entry in payload.get("entry", []):
            for change in entry.get("changes", []):
                for message in change.get("value", {}).get("messages", []):
                    out[message["id"]] = last_in_transaction[xid]
    return out


def warm_up(sandbox: Sandbox, world: World, procs: dict[str, Proc]) -> None:
    """One message per number through the whole inbound path (connections, imports, first queries)."""
    http = requests.Session()
    wamids = []
    for index, number in enumerate(world.numbers):
        wa_id = world.customers[index]
        wamids += _post_inbound(http, sandbox, number["phone_number_id"], [_text(wa_id, "warm up")])
    _wait_committed(world.org_id, wamids, procs, "warm-up")


def open_windows(sandbox: Sandbox, world: World, procs: dict[str, Proc]) -> None:
    """Without the inbound phase: every customer writes once (batches of 50), so every window is open."""
    http = requests.Session()
    wamids = []
    for index, number in enumerate(world.numbers):
        mine = [wa_id for wa_id in world.customers if world.number_of[wa_id] == index]
        for start in range(0, len(mine), 50):
            wamids += _post_inbound(http, sandbox, number["phone_number_id"],
                                    [_text(wa_id, "hello") for wa_id in mine[start:start + 50]])
    _wait_committed(world.org_id, wamids, procs, "opening the windows")


@dataclass
class Latency:
    sent: int
    rate: float
    created: list[float]
    processed: list[float]
    cpu: str


def inbound_latency(sandbox: Sandbox, world: World, procs: dict[str, Proc], meter: CpuMeter) -> Latency:
    total = int(LATENCY_RATE * LATENCY_SECONDS)
    send_times: dict[str, float] = {}
    lock = threading.Lock()
    errors: list[str] = []
    start_at = time.perf_counter() + 0.2
    wall_offset = time.time() - time.perf_counter()

    def sender(index: int) -> None:
        http = requests.Session()
        for n in range(index, total, LATENCY_SENDERS):
            scheduled = start_at + n / LATENCY_RATE
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            wa_id = world.customers[n % len(world.customers)]
            number = world.numbers[world.number_of[wa_id]]
            sent_at = time.time()
            try:
                [wamid] = _post_inbound(http, sandbox, number["phone_number_id"], [_text(wa_id, f"hello, order {n}")])
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(str(exc))
                continue
            with lock:
                send_times[wamid] = sent_at

    before = meter.sample()
    with LockSampler() as locks:
        threads = [threading.Thread(target=sender, args=(i,)) for i in range(LATENCY_SENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise SystemExit(f"inbound latency: {len(errors)} sandbox calls failed, e.g. {errors[0]}")
        posted = max(send_times.values()) - (start_at + wall_offset)
        created = _wait_committed(world.org_id, list(send_times), procs, "inbound latency")
        after = meter.sample()
    processed = _processed_at(world.org_id, min(send_times.values()))
    missing = [w for w in send_times if w not in processed]
    if missing:
        raise SystemExit(f"inbound latency: {len(missing)} messages without a processed webhook row")
    return Latency(
        sent=len(send_times), rate=len(send_times) / posted if posted > 0 else 0.0,
        created=[created[w] - t for w, t in send_times.items()],
        processed=[processed[w] - t for w, t in send_times.items()],
        cpu=CpuMeter.line(before, after, len(send_times)) + "\n" + locks.line(),
    )


@dataclass
class InboundRate:
    messages: int
    posting_seconds: float
    seconds: float
    created_seconds: float
    processed: list[float]
    webhooks: int
    cpu: str


def inbound_rate(sandbox: Sandbox, world: World, procs: dict[str, Proc], meter: CpuMeter) -> InboundRate:
    # Batches per number, customers in turn; the senders share the batches.
    by_number: list[list[str]] = [[], []]
    for wa_id in world.customers:
        by_number[world.number_of[wa_id]].append(wa_id)
    per_number: list[list[tuple[int, list[dict]]]] = []
    for index, count in enumerate([INBOUND_MESSAGES // 2, INBOUND_MESSAGES - INBOUND_MESSAGES // 2]):
        messages = [_text(by_number[index][n % len(by_number[index])], f"where is my order {n}?") for n in range(count)]
        per_number.append([(index, messages[i:i + INBOUND_BATCH]) for i in range(0, count, INBOUND_BATCH)])
    batches = [batch for pair in itertools.zip_longest(*per_number) for batch in pair if batch]  # numbers alternate
    work = collections.deque(batches)
    send_times: dict[str, float] = {}
    lock = threading.Lock()
    errors: list[str] = []

    def sender() -> None:
        http = requests.Session()
        while True:
            with lock:
                if not work:
                    return
                index, messages = work.popleft()
            sent_at = time.time()
            try:
                wamids = _post_inbound(http, sandbox, world.numbers[index]["phone_number_id"], messages)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(str(exc))
                continue
            with lock:
                send_times.update({wamid: sent_at for wamid in wamids})

    time.sleep(1.0)  # the latency phase's throughput count (inbound counts too) has left the sandbox's 1-s span
    before = meter.sample()
    with LockSampler() as locks:
        threads = [threading.Thread(target=sender) for _ in range(INBOUND_SENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise SystemExit(f"inbound rate: {len(errors)} sandbox calls failed, e.g. {errors[0]}")
        first = min(send_times.values())
        posting = max(send_times.values()) - first
        created = _wait_committed(world.org_id, list(send_times), procs, "inbound rate")
        after = meter.sample()
    processed = _processed_at(world.org_id, first)
    missing = [w for w in send_times if w not in processed]
    if missing:
        raise SystemExit(f"inbound rate: {len(missing)} messages without a processed webhook row")
    last_commit = max(processed[w] for w in send_times)
    return InboundRate(
        messages=len(send_times), posting_seconds=posting, seconds=last_commit - first,
        created_seconds=max(created.values()) - first,
        processed=[processed[w] - t for w, t in send_times.items()], webhooks=len(batches),
        cpu=CpuMeter.line(before, after, len(send_times)) + "\n" + locks.line(),
    )


# -- outbound -------------------------------------------------------------------------------------------


def set_throughput(sandbox: Sandbox, world: World, mps: int) -> None:
    from shared.db import unit_of_work

    with unit_of_work() as session:
        session.execute(text("UPDATE whatsapp_numbers SET throughput_mps = :mps WHERE organization_id = :org"),
                        {"mps": mps, "org": world.org_id})
    for number in world.numbers:
        sandbox.number(number["phone_number_id"], throughput_mps=mps, auto_statuses=OUTBOUND_STATUSES)


def conversations_by_number(world: World) -> list[list[uuid.UUID]]:
    from shared.db import unit_of_work

    with unit_of_work() as session:
        rows = session.execute(text(
            "SELECT c.id, c.number_id FROM conversations c JOIN contacts k ON k.id = c.contact_id "
            "WHERE c.organization_id = :org ORDER BY k.wa_id"), {"org": world.org_id}).all()
    index = {number["id"]: i for i, number in enumerate(world.numbers)}
    out: list[list[uuid.UUID]] = [[], []]
    for conversation_id, number_id in rows:
        out[index[number_id]].append(conversation_id)
    return out


@dataclass
class Queued:
    campaign_id: uuid.UUID
    count: int
    started: float  # wall clock before the first transaction
    finished: float  # after the last commit


def queue_messages(world: World, count: int, label: str) -> Queued:
    """`count` text messages, the two numbers alternating, through messages.queue_message.

    One transaction per message, as POST /conversations/{id}/messages does: several queue_message calls in one
    transaction lose publishes (see the module docstring).
    """
    from shared.db import unit_of_work
    from shared.models import Conversation, Organization, SenderType
    from shared.services import messages

    conversations = conversations_by_number(world)
    campaign_id = uuid.uuid4()  # a plain column: tags this phase's messages (no campaign row needed)
    sender_type = SenderType(SENDER_TYPE)
    plan = [conversations[n % 2][(n // 2) % len(conversations[n % 2])] for n in range(count)]
    errors: list[str] = []

    def queuer(index: int) -> None:
        for n in range(index, count, QUEUE_THREADS):
            try:
                with unit_of_work() as session:
                    org = session.get(Organization, world.org_id)
                    messages.queue_message(session, org=org, conversation=session.get(Conversation, plan[n]),
                                           spec={"type": "text", "text": {"body": f"{label}: your order {n} ships today"}},
                                           sender_type=sender_type, campaign_id=campaign_id)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(f"{type(exc).__name__}: {exc}")

    started = time.time()
    threads = [threading.Thread(target=queuer, args=(i,)) for i in range(QUEUE_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"queueing {label}: {len(errors)} queue_message calls failed, e.g. {errors[0]}")
    return Queued(campaign_id, count, started, time.time())


def wait_outbound(world: World, queued: Queued, procs: dict[str, Proc], what: str) -> dict[str, int]:
    from shared.db import unit_of_work

    deadline = time.monotonic() + PHASE_TIMEOUT
    while True:
        with unit_of_work() as session:
            counts = dict(session.execute(text(
                "SELECT status::text, count(*) FROM messages WHERE organization_id = :org AND campaign_id = :c "
                "GROUP BY status"), {"org": world.org_id, "c": queued.campaign_id}).all())
        pending = sum(counts.get(s, 0) for s in ("queued", "sending", "unknown"))
        if sum(counts.values()) == queued.count and pending == 0:
            return counts
        for proc in procs.values():
            proc.check()
        if time.monotonic() > deadline:
            with unit_of_work() as session:
                stuck = session.execute(text(
                    "SELECT status::text, error_code, attempts, count(*), min(next_attempt_at), max(updated_at) "
                    "FROM messages WHERE organization_id = :org AND campaign_id = :c "
                    "AND status IN ('queued', 'sending', 'unknown') GROUP BY 1, 2, 3 ORDER BY 4 DESC"),
                    {"org": world.org_id, "c": queued.campaign_id}).all()
            detail = "; ".join(f"{count} {status} (error {code}, {attempts} attempts, next attempt from "
                               f"{first:%H:%M:%S}, last change {last:%H:%M:%S})"
                               for status, code, attempts, count, first, last in stuck)
            raise SystemExit(f"{what}: not done after {PHASE_TIMEOUT:.0f} s: {counts}; still pending: {detail}")
        time.sleep(0.25)


def sent_times(world: World, queued: Queued) -> dict[uuid.UUID, list[float]]:
    from shared.db import unit_of_work

    with unit_of_work() as session:
        rows = session.execute(text(
            "SELECT number_id, sent_at FROM messages WHERE organization_id = :org AND campaign_id = :c "
            "AND sent_at IS NOT NULL"), {"org": world.org_id, "c": queued.campaign_id}).all()
    out: dict[uuid.UUID, list[float]] = collections.defaultdict(list)
    for number_id, sent_at in rows:
        out[number_id].append(sent_at.timestamp())
    return out


def max_in_one_second(times: list[float]) -> int:
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - 1.0:
            left += 1
        best = max(best, right - left + 1)
    return best


@dataclass
class NumberPace:
    accepted: int
    span: float
    overall: float
    steady: float
    steady_window: float
    worst_second: int
    best_second: int
    busiest_span: int
    ours: float
    gaps_ms: tuple[float, float, float]  # p1, p50, p99 of the time between two accepted sends


@dataclass
class Pacing:
    queued: Queued
    statuses: dict[str, int]
    per_number: list[NumberPace]
    refusals: collections.Counter
    cpu: str


def _graph_calls(sandbox: Sandbox, world: World, since: float) -> tuple[list[list[float]], collections.Counter]:
    """Accepted send times per number (the sandbox's arrival time) and refusals by code, since `since`."""
    index = {number["phone_number_id"]: i for i, number in enumerate(world.numbers)}
    accepted: list[list[float]] = [[], []]
    refusals: collections.Counter = collections.Counter()
    for entry in sandbox.message_requests():
        if entry["at"] < since or entry.get("object_id") not in index:
            continue
        if entry["status_code"] == 200:
            accepted[index[entry["object_id"]]].append(entry["at"])
        else:
            refusals[entry.get("error_code") or entry["status_code"]] += 1
    for times in accepted:
        times.sort()
    return accepted, refusals


def consume(queue: str, on: bool) -> None:
    """Start or stop the bench pool consuming `queue` (Celery remote control: add_consumer / cancel_consumer)."""
    from celery.utils.nodenames import host_format

    from shared.queueing.celery_app import celery_app

    control = celery_app.control.add_consumer if on else celery_app.control.cancel_consumer
    replies = control(queue, destination=[host_format(f"bench-{queue}@%h")], reply=True, timeout=10)
    if not replies:
        raise SystemExit(f"the {queue} pool did not answer {'add' if on else 'cancel'}_consumer")


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def outbound_pacing(sandbox: Sandbox, world: World, procs: dict[str, Proc], meter: CpuMeter) -> Pacing:
    """The whole backlog is queued while the sends pool does not consume (a campaign queued at once), then the
    pool drains it: what is measured is how the limiter paces a full queue, not how fast this process queues."""
    set_throughput(sandbox, world, PACING_MPS)
    time.sleep(1.1)  # inbound traffic counted in the sandbox's last second is gone
    since = time.time()
    consume("sends", on=False)
    try:
        queued = queue_messages(world, int(2 * PACING_MPS * PACING_SECONDS), "pacing")
    finally:
        consume("sends", on=True)
    resumed = time.time()
    before = meter.sample()
    statuses = wait_outbound(world, queued, procs, "outbound pacing")
    after = meter.sample()
    accepted, refusals = _graph_calls(sandbox, world, since)
    ours = sent_times(world, queued)
    per_number = []
    for index, every in enumerate(accepted):
        times = [t for t in every if t >= resumed]  # a few prefetched before the pause went early: not paced ones
        if len(times) < 2:
            raise SystemExit(f"outbound pacing: number {index + 1} sent {len(times)} messages")
        span = times[-1] - times[0]
        # The steady part: the middle of this number's sends by count, so neither the start nor the drain's last
        # stragglers (retries waiting on their countdowns while slots are free) count.
        cut = int(len(times) * (1 - STEADY_FRACTION) / 2)
        inside = times[cut:len(times) - cut]
        lo, hi = inside[0], inside[-1]
        buckets = collections.Counter(int(t - lo) for t in inside)
        full = [buckets.get(s, 0) for s in range(int(hi - lo))]
        mine = sorted(t for t in ours.get(world.numbers[index]["id"], []) if t >= resumed)
        per_number.append(NumberPace(
            accepted=len(every), span=span, overall=_rate(times),
            steady=_rate(inside), steady_window=hi - lo,
            worst_second=min(full) if full else 0, best_second=max(full) if full else 0,
            busiest_span=max_in_one_second(times), ours=_rate(mine),
            gaps_ms=tuple(percentile([(b - a) * 1000 for a, b in zip(inside, inside[1:])] or [0.0], p)
                          for p in (1, 50, 99)),
        ))
    return Pacing(queued, statuses, per_number, refusals, CpuMeter.line(before, after, queued.count))


@dataclass
class Ceiling:
    queued: Queued
    statuses: dict[str, int]
    resumed: float
    last_sent: float
    refusals: collections.Counter
    cpu: str


def outbound_ceiling(sandbox: Sandbox, world: World, procs: dict[str, Proc], meter: CpuMeter) -> Ceiling:
    set_throughput(sandbox, world, CEILING_MPS)
    time.sleep(1.1)
    since = time.time()
    consume("sends", on=False)  # a backlog, as a campaign leaves it: what is measured is the sending, not this
    try:                        # process's one-transaction-per-message queueing (it has a line of its own)
        queued = queue_messages(world, CEILING_MESSAGES, "ceiling")
    finally:
        consume("sends", on=True)
    resumed = time.time()
    before = meter.sample()
    statuses = wait_outbound(world, queued, procs, "outbound ceiling")
    after = meter.sample()
    _, refusals = _graph_calls(sandbox, world, since)
    times = sorted(t for per in sent_times(world, queued).values() for t in per)
    return Ceiling(queued, statuses, resumed, times[-1], refusals, CpuMeter.line(before, after, queued.count))


# -- report and cleanup ----------------------------------------------------------------------------------


def report_inbound(latency: Latency, rate: InboundRate) -> list[str]:
    print()
    print("(1) inbound: customers -> sandbox -> webhook -> web -> webhooks pool -> committed message row")
    p50c, p95c = percentile(latency.created, 50), percentile(latency.created, 95)
    p50, p95, p99 = (percentile(latency.processed, p) for p in (50, 95, 99))
    print(f"  latency at {LATENCY_RATE:.0f} msg/s for {LATENCY_SECONDS:.0f} s ({latency.sent} messages, one per webhook, "
          f"posted at {latency.rate:.0f}/s):")
    print(f"    to messages.created_at (transaction start)  p50 {p50c * 1000:7.0f} ms   p95 {p95c * 1000:7.0f} ms")
    print(f"    to commit (last processed_at of its txn)    p50 {p50 * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   "
          f"p99 {p99 * 1000:7.0f} ms   target p95 < {TARGET_P95_SECONDS * 1000:.0f} ms  "
          f"{verdict(p95 < TARGET_P95_SECONDS)}")
    print(latency.cpu)
    inbound_rate_value = rate.messages / rate.seconds
    print(f"  rate: {rate.messages} messages in {rate.webhooks} webhooks of {INBOUND_BATCH}, {INBOUND_SENDERS} posting threads "
          f"(posted in {rate.posting_seconds:.1f} s)")
    print(f"    first POST -> last commit {rate.seconds:6.1f} s   {inbound_rate_value:7.0f} messages/s   "
          f"target >= {TARGET_INBOUND_RATE:.0f}/s  {verdict(inbound_rate_value >= TARGET_INBOUND_RATE)}")
    print(f"    (to the last created_at: {rate.messages / rate.created_seconds:.0f}/s; per-message latency under this load "
          f"p50 {percentile(rate.processed, 50):.1f} s, p95 {percentile(rate.processed, 95):.1f} s)")
    print(rate.cpu, flush=True)
    return [f"(1) inbound p95 at {LATENCY_RATE:.0f} msg/s   {p95 * 1000:8.0f} ms      target < {TARGET_P95_SECONDS * 1000:.0f} ms   "
            f"{verdict(p95 < TARGET_P95_SECONDS)}",
            f"(1) inbound rate              {inbound_rate_value:8.0f} msg/s   target >= {TARGET_INBOUND_RATE:.0f}/s   "
            f"{verdict(inbound_rate_value >= TARGET_INBOUND_RATE)}"]


def report_pacing(pacing: Pacing) -> list[str]:
    from shared.ratelimit import HEADROOM

    print()
    statuses = ",".join(OUTBOUND_STATUSES) or "none"
    print(f"(2) outbound pacing: 2 numbers at {PACING_MPS}/s (PyTake and sandbox), {pacing.queued.count} text messages "
          f"queued as sender_type={SENDER_TYPE} via messages.queue_message while the sends pool paused, then drained; "
          f"sandbox status webhooks: {statuses}")
    queue_seconds = pacing.queued.finished - pacing.queued.started
    print(f"    queued in {queue_seconds:.1f} s ({pacing.queued.count / queue_seconds:.0f}/s, one transaction each, {QUEUE_THREADS} threads); "
          f"final statuses {pacing.statuses}")
    low, high = PACING_MPS * (1 - TARGET_PACING_TOLERANCE), PACING_MPS * (1 + TARGET_PACING_TOLERANCE)
    for index, pace in enumerate(pacing.per_number, 1):
        ok = low <= pace.steady <= high
        print(f"    number {index}: steady {pace.steady:6.2f}/s over {pace.steady_window:.0f} s (middle {STEADY_FRACTION:.0%} of its sends) "
              f"({(pace.steady / PACING_MPS - 1) * 100:+.1f}%)   target {low:.1f}-{high:.1f}/s  {verdict(ok)}")
        print(f"              {pace.accepted} accepted over {pace.span:.1f} s ({pace.overall:.2f}/s first to last); "
              f"whole seconds {pace.worst_second}-{pace.best_second}; most in any 1-s span {pace.busiest_span}; "
              f"PyTake's sent_at {pace.ours:.2f}/s")
        print(f"              time between accepted sends p1 {pace.gaps_ms[0]:.0f} ms, p50 {pace.gaps_ms[1]:.0f} ms, "
              f"p99 {pace.gaps_ms[2]:.0f} ms (the limiter spaces slots {1000 / (PACING_MPS * HEADROOM):.1f} ms apart)")
    r429 = pacing.refusals.get(130429, 0)
    if any(pace.steady < 0.9 * PACING_MPS for pace in pacing.per_number):
        if r429:
            print(f"    below the limit: each 130429 holds the number for about a second (workers/tasks/sends.py), and "
                  f"the pool may also lack the capacity (see CPU below)")
        else:
            print(f"    below the limit: the pool could not keep up with {PACING_MPS}/s per number on this machine, so "
                  f"this measures capacity, not pacing (see CPU below)")
    print(f"    130429 from the sandbox: {r429}   target 0  {verdict(r429 == 0)}"
          f"{'   (other refusals: ' + str(dict(pacing.refusals)) + ')' if set(pacing.refusals) - {130429} else ''}")
    print(pacing.cpu, flush=True)
    lines = [f"(2) pacing, number {index}         {pace.steady:8.2f} msg/s   target {low:.1f}-{high:.1f}/s   "
             f"{verdict(low <= pace.steady <= high)}" for index, pace in enumerate(pacing.per_number, 1)]
    return lines + [f"(2) 130429 from the sandbox   {r429:8d}         target 0          {verdict(r429 == 0)}"]


def report_ceiling(ceiling: Ceiling) -> list[str]:
    print()
    end_to_end = ceiling.queued.count / (ceiling.last_sent - ceiling.resumed)
    queue_seconds = ceiling.queued.finished - ceiling.queued.started
    statuses = ",".join(OUTBOUND_STATUSES) or "none"
    print(f"(3) outbound ceiling: limit {CEILING_MPS}/s on both numbers, {ceiling.queued.count} messages queued while "
          f"the sends pool paused, then drained; sandbox status webhooks: {statuses}; final statuses {ceiling.statuses}")
    print(f"    queued rows -> Graph -> recorded `sent` {ceiling.last_sent - ceiling.resumed:6.1f} s   {end_to_end:7.0f} messages/s   "
          f"target >= {TARGET_CEILING_RATE:.0f}/s  {verdict(end_to_end >= TARGET_CEILING_RATE)}")
    print(f"    (queueing them, one transaction per message from {QUEUE_THREADS} threads: {queue_seconds:.1f} s = "
          f"{ceiling.queued.count / queue_seconds:.0f}/s; sandbox refusals {dict(ceiling.refusals) or 'none'})")
    print(ceiling.cpu, flush=True)
    return [f"(3) ceiling, statuses {statuses:<9} {end_to_end:8.0f} msg/s   target >= {TARGET_CEILING_RATE:.0f}/s   "
            f"{verdict(end_to_end >= TARGET_CEILING_RATE)}"]


def cleanup(world: World | None, broker: redis.Redis) -> None:
    from shared import db

    if world is not None:
        ids = [number["phone_number_id"] for number in world.numbers]
        try:
            with db.unit_of_work() as session:
                session.execute(text("DELETE FROM webhook_events WHERE organization_id = :org "
                                     "OR phone_number_ids && CAST(:ids AS varchar(64)[])"), {"org": world.org_id, "ids": ids})
                session.execute(text("DELETE FROM organizations WHERE id = :org"), {"org": world.org_id})
        except Exception as exc:  # noqa: BLE001 - say it, keep cleaning
            print(f"cleanup: the database rows of organization {world.org_id} were not deleted: {exc}", file=sys.stderr)
        try:
            from shared import events

            events.get_database()[events.EVENTS].delete_many({"org_id": str(world.org_id)})
            events.close_client()
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup: event-log entries of organization {world.org_id} were not deleted: {exc}", file=sys.stderr)
    db.dispose_engine()
    # The broker and limiter keys in the bench's Redis database: the queues it used, their bindings, unacked
    # deliveries, ping results, and the limiter slots of its numbers.
    try:
        doomed = set()
        for pattern in ("webhooks*", "sends*", "_kombu.binding*", "unacked*", "celery-task-meta-*", "*.reply.celery.pidbox"):
            doomed |= set(broker.scan_iter(match=pattern))
        if world is not None:
            for number in world.numbers:
                doomed |= set(broker.scan_iter(match=f"pytake:ratelimit:*{number['id']}*"))
        if doomed:
            broker.delete(*doomed)
    except redis.RedisError as exc:
        print(f"cleanup: Redis keys were not deleted: {exc}", file=sys.stderr)
    broker.close()


if __name__ == "__main__":
    main()
