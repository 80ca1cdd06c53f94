"""Profile the two hot web endpoints in-process: the webhook intake and the send request.

    .venv/bin/python -m shared.embedded -- .venv/bin/python bench/profile_web.py [intake|send] [requests]

A database of its own (migrated, dropped afterwards) and a Redis database index of its own (15, flushed).
The requests go through the Flask test client with cProfile around them (after a warm-up); prints the
CPU and wall time per request, the SQL statements per request that go through SQLAlchemy (those sent
on the driver connection directly, as the intake's INSERT and the send request's two, are not counted),
and the top functions by cumulative time.
Half the requests run without the profiler (the real CPU per request), half under it.
The test client adds its own cost (the WSGI environ), about 0.1 ms per request.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import random
import sys
import time
import uuid

import psycopg
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from shared.settings import PROJECT_ROOT, Settings, use_settings  # noqa: E402

WHAT = sys.argv[1] if len(sys.argv) > 1 else "intake"
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
TOP = int(os.environ.get("PROFILE_TOP", "35"))


def main() -> None:
    base = Settings.from_env()
    admin = make_url(base.database_url)
    name = f"pytake_profile_{uuid.uuid4().hex[:8]}"
    plain = admin.set(drivername="postgresql").render_as_string(False)
    redis_url = make_url(base.redis_url).set(database="15").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = base.with_overrides(database_url=admin.set(database=name).render_as_string(hide_password=False),
                                   redis_url=redis_url, log_level=os.environ.get("LOG_LEVEL", "INFO"))
    use_settings(settings)
    try:
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.attributes.update(database_url=settings.database_url, skip_logging_config=True)
        command.upgrade(config, "head")
        from web import create_app

        app = create_app(settings)
        client = app.test_client()
        calls = intake_calls(client) if WHAT == "intake" else send_calls(client)
        statements = [0]
        event.listen(Engine, "before_cursor_execute", lambda *a, **k: statements.__setitem__(0, statements[0] + 1))
        for call in calls[:200]:  # warm-up: caches, pools, compiled statements
            call()
        statements[0] = 0
        half = REQUESTS // 2
        rounds = []  # unprofiled, in rounds: the least CPU of the rounds is the one least disturbed by the machine
        for part in range(4):
            chunk = calls[200 + part * half // 4:200 + (part + 1) * half // 4]
            cpu, wall = time.process_time(), time.perf_counter()
            for call in chunk:
                call()
            rounds.append(((time.process_time() - cpu) / len(chunk), (time.perf_counter() - wall) / len(chunk)))
        print(f"{WHAT}: {1000 * min(rounds)[0]:.2f} ms CPU (rounds: {', '.join(f'{1000 * r[0]:.2f}' for r in rounds)}) "
              f"and {1000 * min(rounds)[1]:.2f} ms wall per request without a profiler; "
              f"{statements[0] / half:.1f} SQL statements per request")
        profile = cProfile.Profile()
        profile.enable()
        for call in calls[200 + half:200 + REQUESTS]:
            call()
        profile.disable()
        stats = pstats.Stats(profile)
        print(f"{WHAT}: {stats.total_calls / (REQUESTS - half):.0f} Python function calls per request (cProfile)")
        stats.sort_stats("cumulative").print_stats(TOP)
        stats.sort_stats("tottime").print_stats(TOP)
        if os.environ.get("PROFILE_CALLERS"):
            stats.print_callers(os.environ["PROFILE_CALLERS"])
    finally:
        from shared import db

        db.dispose_engine()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        redis.Redis.from_url(redis_url).flushdb()


def intake_calls(client) -> list:
    import hashlib
    import hmac

    from bench import webhook_intake

    secret = webhook_intake.create_number()
    rng = random.Random(1)

    def call(body: bytes):
        signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()

        def post():
            answer = client.post(webhook_intake.PATH, data=body, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": signature})
            assert answer.status_code == 200, answer.get_data()
        return post

    return [call(webhook_intake.make_payload(rng, f"{n:015d}")) for n in range(REQUESTS + 200)]


def send_calls(client) -> list:
    from bench import send_request

    conversation_ids = send_request.create_tenant()
    answer = client.post("/api/v1/auth/login", json={"email": send_request.EMAIL, "password": send_request.PASSWORD})
    token = answer.get_json()["access_token"]

    def call(n: int):
        conversation_id = conversation_ids[n % len(conversation_ids)]

        def post():
            answer = client.post(f"/api/v1/conversations/{conversation_id}/messages",
                                 json={"type": "text", "text": {"body": f"Reply {n}: your order left today."}},
                                 headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 202, answer.get_data()
        return post

    return [call(n) for n in range(REQUESTS + 200)]


if __name__ == "__main__":
    main()
