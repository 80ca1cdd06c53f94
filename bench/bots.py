"""Benchmark: chatbots on the bots pool, end to end through the Cloud API sandbox (issue 11).

Run alone on the machine with `make bench-bots` (BENCH_ARGS="--customers 100" for a quick check), or:

    .venv/bin/python -m shared.embedded -- .venv/bin/python bench/bots.py [--customers 100] [--help]

Simulated customers walk a six-node flow (message, question with buttons, condition, action, message, end)
through the sandbox, two numbers sharing them:

    customer: "plans"              -> bot: "Hi <name>! ..." (message) + "Which plan?" [Pro] [Free] (question)
    customer: clicks Pro (by id)   -> condition (vars.plan == 'pro') -> action (tag, lead score)
                                   -> bot: "Thanks, pro it is." (message) -> end

A bot step is a customer message the bot answered: two per customer. Targets (issue 11):
1. throughput: --customers (1,000; half on each number) walk the flow as fast as the platform takes it:
   each says the keyword at once (one message per webhook unless --batch, --senders threads posting to the
   sandbox) and clicks as soon as the question has reached the sandbox. steps/s = steps / (first keyword
   posted -> the last step's reply at the sandbox); target >= 300 steps/s.
2. latency: --latency-customers (as many) other customers at a paced --rate (100) inbound messages/s: every
   1/rate s one message is posted, a ready click first (a customer whose question has arrived), else a new
   customer's keyword. Latency = the time just before the customer's message was posted to the sandbox ->
   the time the sandbox received the step's last reply (the question for the first step, "Thanks" for the
   second; the greeting, the first step's first message, is printed too); p50/p95/p99 over all steps; target
   p95 < 1 s. Also printed: how much of it is the sandbox's side (posted -> its webhook delivered to web, from
   the sandbox's log of webhooks) and how much the platform's (webhook delivered -> the reply).

It drives the platform only as a user would: the web API (sign-in, numbers, a chatbot whose main flow's graph
is PUT in React Flow's shape, publish, activate, each number's default_chatbot_id) and the sandbox (customers'
messages in through its inbound API; what the bot sent read from its log of Graph requests, whose times are
the sandbox's own). Whatever the bots pool does inside (burst windows, timeouts) is part of what is measured;
BOT_BURST_SECONDS and the other settings reach the platform's processes from the environment as usual.

What runs (every process a subprocess in a session of its own, stopped at the end whatever happens, Ctrl-C
included): the sandbox (`python -m sandbox --quiet`), web (`gunicorn -c gunicorn.conf.py`), the webhooks, bots
and sends pools with the Procfile's options (concurrency from WORKER_CONCURRENCY / SENDS_CONCURRENCY unless
--*-concurrency), and beat (the bots pool's sweeps are part of the platform; --no-beat leaves it out), each on
a free port where it listens. Data: a database of its own on the configured PostgreSQL (created, migrated,
dropped at the end), a Redis database index of its own (--redis-db, default 11, flushed at the end), and the
MongoDB event-log entries of its organization (deleted at the end). The organization (plan enterprise, no
agents) and its admin are created through the services, as bench/send_request.py does; everything after the
sign-in goes through the API.

The sandbox's numbers take 100,000 messages/s and pair rates are out of the way; PyTake's numbers are
registered at the API's highest throughput (1,000/s): neither limit is what is measured. Status webhooks are
off unless --statuses (each status is one more webhook through web and the webhooks pool).

The sandbox delivers webhooks from one thread, one at a time: in the throughput phase the rate of webhooks
into web is bounded by web's intake time per request. The report prints posted -> webhook delivered (the
sandbox's side) apart from delivered -> reply (the platform's side); --batch packs up to N messages of a
number into one webhook, as Meta does under load.

How replies are seen: the sandbox's control API has no incremental read, so the bench reads its whole log of
message sends (`GET /_sandbox/requests?kind=messages`) every --poll-seconds (0.5) and empties it between
phases. Each read costs the sandbox about 15 us per entry (JSON) and holds its GIL meanwhile; the report
estimates what the reads cost in the phase. The measured times are the sandbox's, not the poll's: polling only
delays the customers' clicks (their thinking time), which in the throughput phase can add up to one poll
interval at the end of the run.

Every phase prints the CPU each process used (100% = one core; postgres, redis and mongodb through the
embedded engines' pid files), and the platform's CPU per step (web, pools, beat, stores: not the sandbox or
the bench). --keep-logs keeps the processes' logs (pools at INFO) in a temporary directory.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from shared.embedded import free_port
from shared.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # run as a script (make bench): the helpers live beside it
from bench.conversations import CpuMeter, Proc, bin_path, percentile, start, wait_http, wait_pool  # noqa: E402
from bench.stores import create_database, isolate, remove  # noqa: E402

TARGET_STEPS_PER_SECOND = 300.0
TARGET_P95_SECONDS = 1.0
PASSWORD = "Bench-Bots-Password-123!"
EMAIL = "bench-bots-admin@example.com"
KEYWORD = "plans"
BUTTON = {"id": "pro", "title": "Pro"}
HELLO, QUESTION, THANKS = "Hi ", "Which plan?", "Thanks, "
PLATFORM = ("web", "webhooks", "bots", "sends", "beat", "postgres", "redis", "mongodb")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="bench/bots.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--customers", type=int, default=int(env("BENCH_BOTS_CUSTOMERS", "1000")),
                        help="customers in the throughput phase (half on each number)")
    parser.add_argument("--latency-customers", type=int, default=None,
                        help="customers in the latency phase (default: --customers)")
    parser.add_argument("--rate", type=float, default=float(env("BENCH_BOTS_RATE", "100")),
                        help="inbound messages/s in the latency phase")
    parser.add_argument("--phases", default=env("BENCH_BOTS_PHASES", "throughput,latency"),
                        help="comma-separated: throughput, latency")
    parser.add_argument("--senders", type=int, default=4, help="threads posting customers' messages to the sandbox")
    parser.add_argument("--batch", type=int, default=1,
                        help="throughput phase: up to this many customers' messages of a number per webhook")
    parser.add_argument("--poll-seconds", type=float, default=0.5, help="how often the sandbox's log is read")
    parser.add_argument("--webhooks-concurrency", type=int, default=int(env("WORKER_CONCURRENCY", "2")))
    parser.add_argument("--bots-concurrency", type=int, default=int(env("WORKER_CONCURRENCY", "2")))
    parser.add_argument("--sends-concurrency", type=int, default=int(env("SENDS_CONCURRENCY", "4")))
    parser.add_argument("--no-beat", action="store_true", help="do not start beat")
    parser.add_argument("--statuses", default="", help="sandbox status webhooks, e.g. sent,delivered (default none)")
    parser.add_argument("--redis-db", type=int, default=int(env("BENCH_REDIS_DB", "11")),
                        help="the Redis database index of the run (flushed at the end)")
    parser.add_argument("--stall-seconds", type=float, default=60.0,
                        help="give up when no reply reaches the sandbox for this long")
    parser.add_argument("--timeout", type=float, default=1200.0, help="give up on a phase after this long")
    parser.add_argument("--keep-logs", action="store_true", default=bool(env("BENCH_KEEP_LOGS")),
                        help="keep the processes' logs (pools at INFO)")
    args = parser.parse_args(argv)
    if args.latency_customers is None:
        args.latency_customers = args.customers
    args.phases = [phase.strip() for phase in args.phases.split(",") if phase.strip()]
    unknown = set(args.phases) - {"throughput", "latency"}
    if unknown or args.customers < 2 or args.latency_customers < 2 or args.rate <= 0 or args.batch < 1:
        parser.error("phases are throughput and latency; at least 2 customers; a positive rate and batch")
    args.statuses = [s.strip() for s in args.statuses.split(",") if s.strip()]
    return args


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f})"


# -- processes ------------------------------------------------------------------------------------------------


def celery_pool(queue: str, concurrency: int, prefetch: int, env: dict[str, str], log_dir: Path,
                keep_logs: bool) -> Proc:
    """A pool as the Procfile starts it (its own node name, so this run's pings reach it)."""
    level = "INFO" if keep_logs else "WARNING"
    return start(queue, [
        bin_path("celery"), "-A", "workers.app", "worker", "-Q", queue, "-n", f"bench-bots-{queue}@%h",
        "--concurrency", str(concurrency), "--prefetch-multiplier", str(prefetch), "--without-gossip",
        "--without-mingle", "-E", "--loglevel", level], {**env, "LOG_LEVEL": level}, log_dir)


def start_platform(procs: dict[str, Proc], pools: dict[str, tuple[int, int]], *, beat: bool, log_dir: Path,
                   keep_logs: bool) -> tuple[str, str]:
    """The sandbox, web (gunicorn as the Procfile runs it), `pools` ({queue: (concurrency, prefetch)}) and beat,
    each on free ports, added to `procs` as they start (so a failure still stops them); waits until each answers.
    Returns the sandbox's and web's base URLs."""
    sandbox_port, web_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "WHATSAPP_API_BASE": f"http://127.0.0.1:{sandbox_port}"}
    procs["sandbox"] = start("sandbox", [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port",
                                         str(sandbox_port), "--quiet"], env, log_dir)
    procs["web"] = start("web", [bin_path("gunicorn"), "-c", str(PROJECT_ROOT / "gunicorn.conf.py"), "--bind",
                                 f"127.0.0.1:{web_port}", "--no-control-socket", "wsgi:app"], env, log_dir)
    for queue, (concurrency, prefetch) in pools.items():
        procs[queue] = celery_pool(queue, concurrency, prefetch, env, log_dir, keep_logs)
    if beat:
        procs["beat"] = start("beat", [bin_path("celery"), "-A", "workers.app", "beat", "--schedule",
                                       str(log_dir / "celerybeat-schedule"), "--loglevel", "WARNING"], env, log_dir)
    sandbox_url, web_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{web_port}"
    wait_http(procs["sandbox"], f"{sandbox_url}/_sandbox/config")
    wait_http(procs["web"], f"{web_url}/readyz")
    for queue in pools:
        wait_pool(procs[queue], queue)
    return sandbox_url, web_url


# -- the web API, as a client uses it -------------------------------------------------------------------------


class Api:
    def __init__(self, base: str):
        self.base = f"{base}/api/v1"
        self.http = requests.Session()

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        response = self.http.request(method, f"{self.base}{path}", timeout=60, **kwargs)
        if response.status_code != expect:
            raise SystemExit(f"API {method} {path}: {response.status_code} {response.text[:800]}")
        return response.json() if response.content else {}

    def sign_in(self, email: str, password: str) -> None:
        token = self.call("POST", "/auth/login", json={"email": email, "password": password})["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"


def node(node_id: str, node_type: str, x: float, y: float, **data) -> dict:
    return {"id": node_id, "type": node_type, "position": {"x": x, "y": y}, "data": data}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def six_node_graph() -> dict:
    """start ("plans") -> message -> question (buttons) -> condition -> action (tag) -> message -> end, with the
    side paths a real flow has (the question's timeout and retry limit), as tests/unit/flow_builders.py's
    six_node_bot; nobody in the bench takes them."""
    return {
        "nodes": [
            node("start", "start", 0, 0, trigger="keyword", keywords=[KEYWORD]),
            node("hello", "message", 0, 100, kind="text",
                 text=HELLO + "{{contact.name | there}}! Let's find your plan."),
            node("ask", "question", 0, 200, text=QUESTION, answer_type="choice", variable="plan",
                 buttons=[BUTTON, {"id": "free", "title": "Free"}], retry_message="Please tap Pro or Free",
                 retry_limit=1, timeout_seconds=600),
            node("check", "condition", 0, 300, branches=[{"id": "is_pro", "expression": "vars.plan == 'pro'"}]),
            node("tag", "action", 0, 400, actions=[{"type": "tag", "tag": "pro-lead"},
                                                  {"type": "change_lead_score", "delta": 10}]),
            node("thanks", "message", 0, 500, kind="text", text=THANKS + "{{vars.plan}} it is."),
            node("end", "end", 0, 600),
            node("agent", "handoff", 300, 300, department_id=None, message="An agent will take it from here."),
            node("bye", "end", -300, 300, message="No answer, talk soon."),
        ],
        "edges": [
            edge("start", "hello"), edge("hello", "ask"), edge("ask", "check"), edge("ask", "bye", "timeout"),
            edge("ask", "agent", "retry_limit"), edge("check", "tag", "is_pro"), edge("check", "thanks", "else"),
            edge("tag", "thanks"), edge("thanks", "end"),
        ],
    }


def create_tenant() -> uuid.UUID:
    """The organization and its admin (there is no API for an enterprise organization: the services, as
    bench/send_request.py does); the rest goes through the API."""
    from shared.db import unit_of_work
    from shared.models import Organization, User
    from shared.models.base import utcnow
    from shared.permissions import Role
    from shared.security import hash_password

    with unit_of_work() as session:
        org = Organization(name="Bots bench", plan_code="enterprise")
        session.add(org)
        session.flush()
        session.add(User(organization_id=org.id, email=EMAIL, password_hash=hash_password(PASSWORD),
                         full_name="Bench Admin", role=Role.org_admin, tokens_valid_after=utcnow()))
        return org.id


@dataclass
class World:
    org_id: uuid.UUID
    numbers: list[dict] = field(default_factory=list)  # phone_number_id, id (PyTake's), credentials
    chatbot: dict | None = None


def build_world(api: Api, sandbox: "Sandbox", world: World, callback_url: str, statuses: list[str]) -> None:
    """Two numbers (in PyTake and in the sandbox), the chatbot built, published and activated, and made each
    number's default: all through the API."""
    suffix = uuid.uuid4().int
    waba_id = f"77{suffix % 10**10:010d}"
    for index in range(2):
        spec = {"waba_id": waba_id, "phone_number_id": f"88{(suffix + index) % 10**10:010d}",
                "display_phone_number": f"1555{(suffix // 7 + index) % 10**7:07d}",
                "access_token": f"EAAG-bench-bots-{uuid.uuid4().hex}", "app_secret": f"bench-bots-{uuid.uuid4().hex}"}
        created = api.call("POST", "/numbers", expect=201, json={**spec, "throughput_mps": 1000})
        sandbox.call("POST", "/numbers", json={
            **spec, "callback_url": callback_url, "throughput_mps": 100_000, "pair_rate_interval_seconds": 3600,
            "pair_rate_burst": 1_000_000, "auto_statuses": statuses})
        world.numbers.append({**spec, "id": created["id"]})
    chatbot = api.call("POST", "/chatbots", expect=201, json={"name": "Plans bot", "description": "bench/bots.py"})
    flow = api.call("POST", f"/chatbots/{chatbot['id']}/flows", expect=201, json={"name": "Main", "is_main": True})
    api.call("PUT", f"/chatbots/{chatbot['id']}/flows/{flow['id']}/graph", json=six_node_graph())
    api.call("POST", f"/chatbots/{chatbot['id']}/publish", expect=201)
    world.chatbot = api.call("POST", f"/chatbots/{chatbot['id']}/activate")
    for number in world.numbers:
        api.call("PATCH", f"/numbers/{number['id']}", json={"default_chatbot_id": chatbot["id"]})


# -- the sandbox ----------------------------------------------------------------------------------------------


class Sandbox:
    def __init__(self, base: str, pid: int):
        self.base = base
        self.pid = pid
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs):
        response = self.http.request(method, f"{self.base}/_sandbox{path}", timeout=120, **kwargs)
        if response.status_code >= 400:
            raise SystemExit(f"sandbox {method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def sends(self) -> list[dict]:
        """Every Graph message send the sandbox received, in arrival order, with its time (`at`)."""
        return self.call("GET", "/requests", params={"kind": "messages"})["data"]

    def empty_logs(self) -> None:
        """Between phases (nothing in flight): the logs down to one entry and back, so reads stay small."""
        self.call("PATCH", "/config", json={"log_limit": 1})
        self.call("PATCH", "/config", json={"log_limit": 1_000_000})

    def cpu(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system


# -- customers ------------------------------------------------------------------------------------------------


@dataclass
class Walk:
    """One customer's walk through the flow: bench times when their messages were posted, sandbox times when
    the bot's replies arrived."""

    wa_id: str
    number: int
    name: str
    keyword_at: float | None = None
    click_at: float | None = None
    question_wamid: str | None = None
    hello_at: float | None = None
    question_at: float | None = None
    thanks_at: float | None = None
    click_queued: bool = False
    keyword_delivered: float | None = None  # when the sandbox began the webhook POST that web answered 200
    click_delivered: float | None = None

    @property
    def done(self) -> bool:
        return self.thanks_at is not None

    def stage(self) -> str:
        if self.done:
            return "done"
        if self.click_at is not None:
            return "clicked, waiting for Thanks"
        if self.question_at is not None:
            return "question arrived, click not posted"
        if self.keyword_at is not None:
            return "keyword posted, waiting for the question" if self.hello_at is None else "greeted, no question yet"
        return "not started"


def walks_for(phase: int, count: int) -> list[Walk]:
    return [Walk(wa_id=f"1650{phase}{n:06d}", number=n % 2, name=f"Customer {phase}-{n}") for n in range(count)]


class Drive:
    """Posts customers' messages and follows the bot's replies in the sandbox's log."""

    def __init__(self, sandbox: Sandbox, world: World, walks: list[Walk], procs: dict[str, Proc], args):
        self.sandbox, self.world, self.walks, self.procs, self.args = sandbox, world, walks, procs, args
        self.by_wa_id = {walk.wa_id: walk for walk in walks}
        self.lock = threading.Condition()
        self.ready_clicks: collections.deque[Walk] = collections.deque()
        self.keywords: collections.deque[Walk] = collections.deque(walks)
        self.errors: list[str] = []
        self.refusals: collections.Counter = collections.Counter()
        self.unexpected: collections.Counter = collections.Counter()
        self.seen = 0  # entries of the sandbox's log already read
        self.polls = 0
        self.entries_read = 0
        self.posts: list[float] = []
        self.finished = False

    # posting ------------------------------------------------------------------------------------------

    def post(self, http: requests.Session, batch: list[tuple[Walk, bool]]) -> None:
        """One webhook carrying `batch` (customers of one number; a click is a button reply by id, with the
        question's wamid as its context, as WhatsApp sends it)."""
        specs = []
        for walk, click in batch:
            spec: dict = {"from": walk.wa_id, "name": walk.name}
            if click:
                spec.update(type="interactive", interactive={"type": "button_reply", "button_reply": BUTTON},
                            context={"id": walk.question_wamid})
            else:
                spec.update(type="text", text={"body": KEYWORD})
            specs.append(spec)
        phone_number_id = self.world.numbers[batch[0][0].number]["phone_number_id"]
        at = time.time()
        try:
            response = http.post(f"{self.sandbox.base}/_sandbox/numbers/{phone_number_id}/inbound", timeout=60,
                                 json=specs[0] if len(specs) == 1 else {"messages": specs})
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code} {response.text[:300]}")
        except Exception as exc:  # noqa: BLE001 - reported by the phase
            with self.lock:
                self.errors.append(f"sandbox inbound for {batch[0][0].wa_id}: {exc}")
            return
        with self.lock:
            for walk, click in batch:
                if click:
                    walk.click_at = at
                else:
                    walk.keyword_at = at
                self.posts.append(at)

    def next_batch(self, size: int) -> list[tuple[Walk, bool]]:
        """Up to `size` messages of one number: ready clicks first (their customers wait on the bot), then new
        customers' keywords."""
        with self.lock:
            if self.ready_clicks:
                number = self.ready_clicks[0].number
            elif self.keywords:
                number = self.keywords[0].number
            else:
                return []
            batch: list[tuple[Walk, bool]] = []
            for source, click in ((self.ready_clicks, True), (self.keywords, False)):
                kept: collections.deque[Walk] = collections.deque()
                while source and len(batch) < size:
                    walk = source.popleft()
                    if walk.number == number:
                        batch.append((walk, click))
                    else:
                        kept.append(walk)
                source.extendleft(reversed(kept))
            return batch

    def flat_out(self) -> None:
        """A sender as fast as the sandbox takes the messages."""
        http = requests.Session()
        while True:
            with self.lock:
                while not (self.ready_clicks or self.keywords or self.finished or self.errors):
                    self.lock.wait(0.5)
                if self.finished or self.errors:
                    return
            batch = self.next_batch(self.args.batch)
            if batch:
                self.post(http, batch)

    def paced(self, index: int, start_at: float) -> None:
        """A sender of every --senders-th slot of a 1/rate grid; a slot with nothing ready passes."""
        http = requests.Session()
        for slot in range(index, 10**9, self.args.senders):
            if self.finished or self.errors:
                return
            delay = start_at + slot / self.args.rate - time.time()
            if delay > 0:
                time.sleep(delay)
            batch = self.next_batch(1)
            if batch:
                self.post(http, batch)

    # following --------------------------------------------------------------------------------------

    def poll(self) -> int:
        """Read the sandbox's log; what is new moves the customers on. How many new replies it held."""
        entries = self.sandbox.sends()
        self.polls += 1
        self.entries_read += len(entries)
        new = entries[self.seen:]
        self.seen = len(entries)
        replies = 0
        with self.lock:
            for entry in new:
                if entry.get("status_code") != 200:
                    self.refusals[entry.get("error_code") or entry.get("status_code")] += 1
                    continue
                body = entry.get("body") or {}
                answer = entry.get("response") or {}
                contacts = answer.get("contacts") or [{}]
                wa_id = contacts[0].get("wa_id") or "".join(ch for ch in str(body.get("to", "")) if ch.isdigit())
                walk = self.by_wa_id.get(wa_id)
                kind = self._kind(body)
                if walk is None or kind is None:
                    self.unexpected[kind or body.get("type")] += 1
                    continue
                replies += 1
                if kind == "hello" and walk.hello_at is None:
                    walk.hello_at = entry["at"]
                elif kind == "question" and walk.question_at is None:
                    walk.question_at = entry["at"]
                    walk.question_wamid = (answer.get("messages") or [{}])[0].get("id")
                    if not walk.click_queued:
                        walk.click_queued = True
                        self.ready_clicks.append(walk)
                elif kind == "thanks" and walk.thanks_at is None:
                    walk.thanks_at = entry["at"]
                else:
                    self.unexpected[f"a second {kind}"] += 1
            self.lock.notify_all()
        return replies

    @staticmethod
    def _kind(body: dict) -> str | None:
        if body.get("type") == "interactive":
            text = ((body.get("interactive") or {}).get("body") or {}).get("text", "")
            return "question" if text.startswith(QUESTION) else None
        if body.get("type") == "text":
            text = (body.get("text") or {}).get("body", "")
            return "thanks" if text.startswith(THANKS) else "hello" if text.startswith(HELLO) else None
        return None

    def follow(self, what: str, senders: list[threading.Thread]) -> None:
        """Poll until every customer has the bot's last reply; give up on a stall, a dead process or an error."""
        started = last_progress = time.monotonic()
        try:
            while True:
                if self.poll():
                    last_progress = time.monotonic()
                if all(walk.done for walk in self.walks):
                    return
                with self.lock:
                    if self.errors:
                        raise SystemExit(f"{what}: {len(self.errors)} sandbox calls failed, e.g. {self.errors[0]}")
                for proc in self.procs.values():
                    proc.check()
                now = time.monotonic()
                if now - last_progress > self.args.stall_seconds or now - started > self.args.timeout:
                    stages = collections.Counter(walk.stage() for walk in self.walks)
                    raise SystemExit(
                        f"{what}: no reply reached the sandbox for {now - last_progress:.0f} s "
                        f"({now - started:.0f} s into the phase); customers: {dict(stages)}; sandbox refusals "
                        f"{dict(self.refusals) or 'none'}; unexpected sends {dict(self.unexpected) or 'none'}")
                time.sleep(self.args.poll_seconds)
        finally:
            with self.lock:
                self.finished = True
                self.lock.notify_all()
            for thread in senders:
                thread.join(timeout=70)


# -- the phases -----------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    walks: list[Walk]
    drive: Drive
    cpu: dict[str, float]  # seconds per component over the phase, "_wall" its length
    poll_cpu: float  # estimated sandbox CPU spent answering the bench's reads

    @property
    def steps(self) -> int:
        return sum((w.question_at is not None) + (w.thanks_at is not None) for w in self.walks)

    def latencies(self) -> list[float]:
        """Message posted -> the step's last reply at the sandbox, for every step."""
        out = []
        for walk in self.walks:
            out.append(walk.question_at - walk.keyword_at)
            out.append(walk.thanks_at - walk.click_at)
        return out

    def delivery(self) -> tuple[list[float], list[float]]:
        """(posted -> webhook delivered to web, webhook delivered -> the step's last reply) per step."""
        to_web, after = [], []
        for walk in self.walks:
            for posted, delivered, replied in ((walk.keyword_at, walk.keyword_delivered, walk.question_at),
                                               (walk.click_at, walk.click_delivered, walk.thanks_at)):
                if delivered is not None:
                    to_web.append(delivered - posted)
                    after.append(replied - delivered)
        return to_web, after

    @property
    def first_post(self) -> float:
        return min(walk.keyword_at for walk in self.walks)

    @property
    def last_reply(self) -> float:
        return max(walk.thanks_at for walk in self.walks)


def cpu_delta(meter: CpuMeter, before: dict[str, float]) -> dict[str, float]:
    after = meter.sample()
    return {name: after.get(name, 0.0) - value for name, value in before.items()
            if not name.startswith("_") or name == "_wall"}


def webhook_times(sandbox: Sandbox, walks: list[Walk]) -> None:
    """When the sandbox delivered each customer message's webhook to web (its log of webhooks, read once)."""
    by_wa_id = {walk.wa_id: walk for walk in walks}
    for record in sandbox.call("GET", "/webhooks", params={"field": "messages"})["data"]:
        delivered = next((a["at"] for a in record["attempts"] if a.get("status_code") == 200), None)
        if delivered is None:
            continue
        for entry in record["payload"].get("entry", []):
            for change in entry.get("changes", []):
                for message in change.get("value", {}).get("messages", []):
                    walk = by_wa_id.get(message.get("from"))
                    if walk is None:
                        continue
                    if message.get("type") == "interactive" and walk.click_delivered is None:
                        walk.click_delivered = delivered
                    elif message.get("type") == "text" and walk.keyword_delivered is None:
                        walk.keyword_delivered = delivered


def poll_cost(sandbox: Sandbox, drive: Drive) -> float:
    """The sandbox's CPU for the phase's reads, estimated: three reads of the whole log now (the platform
    idle), scaled by the entries the phase's reads returned."""
    entries = len(sandbox.sends())
    cpu = sandbox.cpu()
    for _ in range(3):
        sandbox.sends()
    per_entry = (sandbox.cpu() - cpu) / (3 * max(1, entries))
    return per_entry * drive.entries_read


def run_phase(name: str, walks: list[Walk], sandbox: Sandbox, world: World, procs: dict[str, Proc],
              meter: CpuMeter, args, *, paced: bool) -> Result:
    drive = Drive(sandbox, world, walks, procs, args)
    drive.seen = len(sandbox.sends())  # what is left of the previous phase (one entry) is not this phase's
    before = meter.sample()
    if paced:
        start_at = time.time() + 0.2
        senders = [threading.Thread(target=drive.paced, args=(i, start_at), daemon=True) for i in range(args.senders)]
    else:
        senders = [threading.Thread(target=drive.flat_out, daemon=True) for _ in range(args.senders)]
    for thread in senders:
        thread.start()
    drive.follow(name, senders)
    cpu = cpu_delta(meter, before)
    result = Result(name, walks, drive, cpu, poll_cost(sandbox, drive))
    webhook_times(sandbox, walks)
    sandbox.empty_logs()
    return result


# -- the report -----------------------------------------------------------------------------------------------


def cpu_lines(result: Result) -> list[str]:
    wall = result.cpu["_wall"]
    parts = [f"{name} {used / wall * 100:.0f}%" for name, used in result.cpu.items() if not name.startswith("_")]
    platform = sum(result.cpu.get(name, 0.0) for name in PLATFORM)
    steps = max(1, result.steps)
    return [f"    CPU over {wall:.1f} s (100% = one core; {os.cpu_count()} cores): {', '.join(parts)}",
            f"    platform (web, pools, beat, stores) {platform / steps * 1000:.1f} ms CPU per step; the sandbox "
            f"{result.cpu.get('sandbox', 0.0) / steps * 1000:.1f} ms (of which about "
            f"{result.poll_cpu / steps * 1000:.1f} ms answering the bench's {result.drive.polls} reads of its log), "
            f"the bench {result.cpu.get('bench', 0.0) / steps * 1000:.1f} ms"]


def quantiles(samples: list[float]) -> str:
    if not samples:
        return "(none)"
    return "   ".join(f"p{p} {percentile(samples, p) * 1000:6.0f} ms" for p in (50, 95, 99))


def anomalies(result: Result) -> list[str]:
    drive, lines = result.drive, []
    if drive.refusals:
        lines.append(f"    sandbox refused sends: {dict(drive.refusals)}")
    if drive.unexpected:
        lines.append(f"    sends the bench did not expect: {dict(drive.unexpected)}")
    return lines


def report_throughput(result: Result, count: int) -> list[str]:
    seconds = result.last_reply - result.first_post
    rate = result.steps / seconds
    posts = sorted(result.drive.posts)
    print()
    args = result.drive.args
    per_webhook = "one message" if args.batch == 1 else f"up to {args.batch} messages of a number"
    print(f"(1) throughput: {count} customers over 2 numbers, each keyword posted at once ({args.senders} threads, "
          f"{per_webhook} per webhook), each click as soon as its question reached the sandbox")
    print(f"    {result.steps} steps, first keyword posted -> last reply at the sandbox {seconds:6.2f} s   "
          f"{rate:7.0f} steps/s   target >= {TARGET_STEPS_PER_SECOND:.0f}/s  "
          f"{verdict(rate >= TARGET_STEPS_PER_SECOND)}")
    print(f"    ({len(posts)} customer messages posted over {posts[-1] - posts[0]:.2f} s; message -> reply under this "
          f"load: {quantiles(result.latencies())})")
    to_web, after = result.delivery()
    if to_web:
        print(f"    (of which posted -> webhook delivered to web p95 {percentile(to_web, 95) * 1000:.0f} ms; "
              f"delivered -> the step's last reply p95 {percentile(after, 95) * 1000:.0f} ms)")
    for line in cpu_lines(result) + anomalies(result):
        print(line)
    return [f"(1) bot steps/s, {count} customers   {rate:8.0f} steps/s   target >= {TARGET_STEPS_PER_SECOND:.0f}/s   "
            f"{verdict(rate >= TARGET_STEPS_PER_SECOND)}"]


def report_latency(result: Result, count: int, rate: float) -> list[str]:
    posts = sorted(result.drive.posts)
    achieved = (len(posts) - 1) / (posts[-1] - posts[0]) if len(posts) > 1 and posts[-1] > posts[0] else 0.0
    last = result.latencies()
    greetings = [w.hello_at - w.keyword_at for w in result.walks if w.hello_at is not None]
    starts = [w.question_at - w.keyword_at for w in result.walks]
    answers = [w.thanks_at - w.click_at for w in result.walks]
    p95 = percentile(last, 95)
    print()
    print(f"(2) latency: {count} customers over 2 numbers at {rate:.0f} inbound messages/s (posted at {achieved:.1f}/s "
          f"over {posts[-1] - posts[0]:.1f} s; a ready click first, else a new customer's keyword)")
    print(f"    message posted -> the step's last reply at the sandbox ({len(last)} steps)")
    print(f"      all steps            {quantiles(last)}   target p95 < {TARGET_P95_SECONDS * 1000:.0f} ms  "
          f"{verdict(p95 < TARGET_P95_SECONDS)}")
    print(f"      keyword -> question  {quantiles(starts)}")
    print(f"      click -> Thanks      {quantiles(answers)}")
    print(f"    keyword -> the first step's first reply (the greeting): {quantiles(greetings)}")
    to_web, after = result.delivery()
    if to_web:
        print(f"    message posted -> its webhook delivered to web {quantiles(to_web)}  (the sandbox's side)")
        print(f"    webhook delivered -> the step's last reply     {quantiles(after)}  (the platform's side)")
    if achieved < 0.95 * rate:
        print(f"    the customers posted below {rate:.0f}/s: clicks wait for their questions, and at the start and the "
              f"end of the run fewer messages are ready than slots")
    for line in cpu_lines(result) + anomalies(result):
        print(line)
    return [f"(2) p95 message -> reply at {rate:.0f} msg/s   {p95 * 1000:6.0f} ms   target < "
            f"{TARGET_P95_SECONDS * 1000:.0f} ms   {verdict(p95 < TARGET_P95_SECONDS)}"]


# -- the run --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM unwinds like an exception, so `finally` stops every process started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stores = isolate("pytake_bench_bots", args.redis_db)

    log_dir = Path(tempfile.mkdtemp(prefix="pytake-bench-bots-"))
    procs: dict[str, Proc] = {}
    world: World | None = None
    sandbox: Sandbox | None = None
    failed = True
    try:
        create_database(stores)
        world = World(org_id=create_tenant())

        sandbox_url, web_url = start_platform(
            procs, {"webhooks": (args.webhooks_concurrency, 1), "bots": (args.bots_concurrency, 4),
                    "sends": (args.sends_concurrency, 1)}, beat=not args.no_beat, log_dir=log_dir,
            keep_logs=args.keep_logs)
        sandbox = Sandbox(sandbox_url, procs["sandbox"].process.pid)
        sandbox.call("PATCH", "/config", json={"log_limit": 1_000_000})

        api = Api(web_url)
        api.sign_in(EMAIL, PASSWORD)
        build_world(api, sandbox, world, f"{web_url}/api/v1/webhooks/whatsapp", args.statuses)
        meter = CpuMeter(procs)
        burst = os.environ.get("BOT_BURST_SECONDS")
        print(f"bots bench: {os.cpu_count()} CPUs, {load()}; web gunicorn -c gunicorn.conf.py; pools webhooks "
              f"--concurrency {args.webhooks_concurrency}, bots {args.bots_concurrency} (prefetch 4), sends "
              f"{args.sends_concurrency}; beat {'off' if args.no_beat else 'on'}; chatbot {world.chatbot['id']} "
              f"version {world.chatbot['live_version']} on 2 numbers; sandbox status webhooks "
              f"{','.join(args.statuses) or 'none'}; BOT_BURST_SECONDS "
              f"{burst if burst is not None else 'not set (the platform default)'}", flush=True)

        # Warm-up: a customer per number walks the flow (imports, connections, first queries); not measured.
        warm = run_phase("warm-up", walks_for(0, 2), sandbox, world, procs, meter, args, paced=False)
        print(f"warm-up: 2 customers walked the flow, the slowest step {max(warm.latencies()) * 1000:.0f} ms",
              flush=True)

        idle = meter.sample()
        time.sleep(3)
        idle = cpu_delta(meter, idle)
        print("idle for 3 s (100% = one core): " + ", ".join(
            f"{name} {used / idle['_wall'] * 100:.0f}%" for name, used in idle.items() if not name.startswith("_")),
            flush=True)

        summary = []
        if "throughput" in args.phases:
            print(f"\nthroughput phase: {args.customers} customers; {load()}", flush=True)
            result = run_phase("throughput", walks_for(1, args.customers), sandbox, world, procs, meter, args,
                               paced=False)
            summary += report_throughput(result, args.customers)
        if "latency" in args.phases:
            time.sleep(2)  # the previous phase's tail (commits, acks) out of the way
            print(f"\nlatency phase: {args.latency_customers} customers at {args.rate:.0f} messages/s; {load()}",
                  flush=True)
            result = run_phase("latency", walks_for(2, args.latency_customers), sandbox, world, procs, meter, args,
                               paced=True)
            summary += report_latency(result, args.latency_customers, args.rate)
        for proc in procs.values():
            proc.check()
        print()
        print(f"summary ({os.cpu_count()} CPUs; pools webhooks {args.webhooks_concurrency}, bots "
              f"{args.bots_concurrency}, sends {args.sends_concurrency}; {load()} at the end)")
        for line in summary:
            print(f"  {line}")
        failed = False
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        if failed:
            for proc in procs.values():
                print(f"--- {proc.name} log (tail) ---\n{proc.log_tail(20)}", file=sys.stderr)
        if sandbox is not None and world is not None:
            try:  # no more webhooks toward web, and none left in flight
                for number in world.numbers:
                    sandbox.call("PATCH", f"/numbers/{number['phone_number_id']}", json={"callback_url": None})
                sandbox.call("POST", "/drain", json={"timeout": 10})
            except (SystemExit, requests.RequestException):
                pass
        for name in ("beat", "sends", "bots", "webhooks", "web", "sandbox"):
            if name in procs:
                procs[name].stop()
        remove(stores, world.org_id if world is not None else None)
        if args.keep_logs:
            print(f"process logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench/bots.py: interrupted; every process it started is stopped and its data removed", file=sys.stderr)
        sys.exit(130)
