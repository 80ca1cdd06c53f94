"""Benchmark: the send request itself, `POST /api/v1/conversations/{id}/messages`, against a bare Flask endpoint.

Run with `make bench`, or on its own:

    .venv/bin/python -m shared.embedded -- .venv/bin/python bench/send_request.py

It uses a database of its own (migrated, dropped afterwards) and a Redis database index of its own
(BENCH_REDIS_DB, default 14), flushed at the end. An organization (plan enterprise), one WhatsApp
number, an org_admin and BENCH_CONVERSATIONS (50) conversations whose 24-hour window is open are
created through the services; the admin signs in through the API like any client.

Two servers run side by side with the Procfile's web settings (`gunicorn -c gunicorn.conf.py`: threaded
workers, ${WEB_CONCURRENCY:-2} x ${WEB_THREADS:-8}; no access log): `wsgi:app`, and a bare Flask app whose one POST
route parses the JSON body and answers 202. BENCH_CLIENTS (6) keep-alive clients (as a new user tried
it: 2,000 replies from 6 clients) post BENCH_REQUESTS (2,000) text replies in a closed loop, spread
over the conversations. No sends pool runs: what is measured is the request, which only writes the
intent and makes sure a dispatcher is pending.

Target: the send request at >= 25% of the bare endpoint's rate. Also printed: p50/p95 latency, and the
load average before the run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from shared.logs import configure_logging
from shared.settings import PROJECT_ROOT, Settings, use_settings

sys.path.insert(0, str(PROJECT_ROOT))  # run as a script (make bench): the load generator lives beside it
from bench.webhook_intake import Connection, Server, machine_cpu_seconds, percentile, start_gunicorn  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "6"))
CONVERSATIONS = int(os.environ.get("BENCH_CONVERSATIONS", "50"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "200"))
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "14"))
WORKERS = os.environ.get("WEB_CONCURRENCY") or "2"
THREADS = os.environ.get("WEB_THREADS") or "8"
TARGET_RATIO = 0.25
PASSWORD = "Bench-Password-123!"
EMAIL = "bench-admin@example.com"

BARE_APP = '''"""A bare Flask app: the floor any JSON endpoint on this machine and these gunicorn settings can reach."""
from flask import Flask, request

app = Flask(__name__)


@app.post("/api/v1/conversations/<conversation_id>/messages")
def send(conversation_id):
    body = request.get_json()
    return {"id": conversation_id, "type": body["type"], "status": "queued"}, 202
'''


def build_request(port: int, conversation_id: str, token: str, n: int) -> bytes:
    body = json.dumps({"type": "text", "text": {"body": f"Reply {n}: your order left the warehouse today."}}).encode()
    head = (f"POST /api/v1/conversations/{conversation_id}/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def client_process(port: int, token: str, conversation_ids: list[str], count: int, index: int, barrier, out) -> None:
    requests_ = [build_request(port, conversation_ids[(index + n * CLIENTS) % len(conversation_ids)], token, n)
                 for n in range(count)]
    connection = Connection(port)
    latencies, errors = [], {}
    barrier.wait()
    started = time.perf_counter()
    for request in requests_:
        sent = time.perf_counter()
        try:
            status, body = connection.exchange(request)
        except OSError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            continue
        latencies.append((time.perf_counter() - sent) * 1000)
        if status != 202:
            key = f"{status} {body[:100].decode(errors='replace')}"
            errors[key] = errors.get(key, 0) + 1
    connection.close()
    out.put((started, time.perf_counter(), latencies, errors))


def run_load(port: int, token: str, conversation_ids: list[str], total: int) -> dict:
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(CLIENTS), ctx.Queue()
    shares = [total // CLIENTS + (1 if i < total % CLIENTS else 0) for i in range(CLIENTS)]
    processes = [ctx.Process(target=client_process, args=(port, token, conversation_ids, shares[i], i, barrier, out),
                             daemon=True) for i in range(CLIENTS)]
    for process in processes:
        process.start()
    results = [out.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    started = min(r[0] for r in results)
    finished = max(r[1] for r in results)
    latencies = [ms for r in results for ms in r[2]]
    errors: dict[str, int] = {}
    for r in results:
        for key, count in r[3].items():
            errors[key] = errors.get(key, 0) + count
    ok = len(latencies) - sum(errors.values())
    return {"rate": ok / (finished - started), "latencies": latencies, "errors": errors, "ok": ok}


def create_tenant() -> list[str]:
    """The organization, its admin, a number and conversations whose window is open."""
    import datetime as dt

    from shared.db import unit_of_work
    from shared.models import Organization, User
    from shared.permissions import Role
    from shared.models.base import utcnow
    from shared.security import hash_password
    from shared.services import contacts, conversations, numbers

    with unit_of_work() as session:
        org = Organization(name="Send request bench", plan_code="enterprise")
        session.add(org)
        session.flush()
        session.add(User(organization_id=org.id, email=EMAIL, password_hash=hash_password(PASSWORD),
                         full_name="Bench Admin", role=Role.org_admin, tokens_valid_after=utcnow()))
        number = numbers.create_number(session, org=org, waba_id="990200300400", phone_number_id="990200300401",
                                       display_phone_number="15550299001", access_token="EAAG-bench-token",
                                       app_secret="bench-secret")
        ids = []
        for n in range(CONVERSATIONS):
            contact = contacts.create_contact(session, org=org, phone=f"+1650555{n:04d}")
            conversation = conversations.get_or_open(session, org_id=org.id, number_id=number.id,
                                                     contact_id=contact.id)
            conversation.window_expires_at = utcnow() + dt.timedelta(hours=23)
            ids.append(str(conversation.id))
    return ids


def sign_in(port: int) -> str:
    body = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
    request = (f"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    status, answer = Connection(port).exchange(request)
    if status != 200:
        raise SystemExit(f"login answered {status}: {answer[:300]!r}")
    return json.loads(answer)["access_token"]


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 60
    while True:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            Connection(server.port).exchange(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{server.name} did not answer within 60 s:\n{server.log_tail()}")
            time.sleep(0.2)


def main() -> None:
    load_before = os.getloadavg()[0]
    base = Settings.from_env()
    admin = make_url(base.database_url)
    name = f"pytake_bench_{uuid.uuid4().hex[:8]}"
    plain_admin = admin.set(drivername="postgresql").render_as_string(False)
    redis_url = make_url(base.redis_url).set(database=str(REDIS_DB)).render_as_string(hide_password=False)
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = base.with_overrides(database_url=admin.set(database=name).render_as_string(hide_password=False),
                                   redis_url=redis_url, log_level="WARNING")
    use_settings(settings)
    configure_logging(settings)
    servers: list[Server] = []
    work_dir = Path(tempfile.mkdtemp(prefix="pytake-bench-send-"))
    try:
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.attributes.update(database_url=settings.database_url, skip_logging_config=True)
        command.upgrade(config, "head")
        conversation_ids = create_tenant()
        (work_dir / "bare_send.py").write_text(BARE_APP)
        env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": redis_url,
               "PYTHONPATH": str(PROJECT_ROOT), "LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "INFO")}
        servers.append(start_gunicorn("bare", "bare_send:app", work_dir,
                                      {k: v for k, v in env.items() if k != "PYTHONPATH"}, work_dir))
        servers.append(start_gunicorn("send", "wsgi:app", PROJECT_ROOT, env, work_dir))
        for server in servers:
            wait_ready(server)
        token = sign_in(servers[1].port)
        figures = {}
        for server in servers:
            run_load(server.port, token, conversation_ids, WARMUP)
            server_cpu, machine_cpu = server.cpu_seconds(), machine_cpu_seconds()
            figures[server.name] = run_load(server.port, token, conversation_ids, REQUESTS)
            figures[server.name]["cpu_us"] = (1e6 * (server.cpu_seconds() - server_cpu) / REQUESTS,
                                              1e6 * (machine_cpu_seconds() - machine_cpu) / REQUESTS)
            time.sleep(1)
        report(figures, load_before)
    finally:
        for server in servers:
            server.stop()
        from shared import db

        db.dispose_engine()
        with psycopg.connect(plain_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        redis.Redis.from_url(redis_url).flushdb()


def report(figures: dict[str, dict], load_before: float) -> None:
    bare, send = figures["bare"], figures["send"]
    ratio = send["rate"] / bare["rate"] if bare["rate"] else 0.0
    print(f"POST /api/v1/conversations/{{id}}/messages: gunicorn -c gunicorn.conf.py ({WORKERS} workers x {THREADS} "
          f"threads), {os.cpu_count()} CPUs, load average {load_before:.2f} before the run")
    print(f"{REQUESTS} text replies from {CLIENTS} keep-alive clients over {CONVERSATIONS} conversations")
    print(f"{'':<28}{'bare Flask':>12}{'send':>12}   target")
    print(f"{'rate':<28}{bare['rate']:>10.0f}/s{send['rate']:>10.0f}/s")
    print(f"{'send / bare rate':<28}{'':>12}{ratio:>12.0%}   >= {TARGET_RATIO:.0%}  "
          f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
    for label, pct in (("p50 latency", 50), ("p95 latency", 95)):
        print(f"{label:<28}{percentile(bare['latencies'], pct):>9.1f} ms{percentile(send['latencies'], pct):>9.1f} ms")
    print(f"median request {statistics.median(send['latencies']):.1f} ms")
    print(f"web workers' CPU per request: bare {bare['cpu_us'][0]:.0f} us, send {send['cpu_us'][0]:.0f} us; the whole "
          f"machine's (PostgreSQL, Redis, MongoDB and the load generator included): bare {bare['cpu_us'][1]:.0f} us, "
          f"send {send['cpu_us'][1]:.0f} us")
    for server_name, result in figures.items():
        if result["errors"]:
            print(f"  {server_name}: {sum(result['errors'].values())} failed {dict(list(result['errors'].items())[:3])}")


if __name__ == "__main__":
    sys.exit(main())
