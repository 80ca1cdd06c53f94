"""Benchmark: contact CSV import end to end, and the filtered contact list over 1,000,000 contacts.

Run with `make bench` (embedded stores unless URLs are set); it uses a database of its own,
dropped afterwards.

1. Import: a 100,000-row CSV (5% invalid numbers, 5% duplicates, Brazilian forms mixed in) is
   uploaded through the API and imported by a real worker process (maintenance pool).
   Prints rows/s from upload to job succeeded, and the worker's peak RSS (main + pool child).
   Targets: >= 20,000 rows/s, peak RSS < 250 MB.
2. List: 1,000,000 contacts (tags, stages, consent, attributes) loaded with SQL, then five typical
   filters through GET /api/v1/contacts, 30 runs each. Prints p50/p95 per filter. Target p95 < 150 ms.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import psutil
import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared.logs import configure_logging
from shared.queueing.names import MAINTENANCE
from shared.settings import PROJECT_ROOT, Settings, use_settings

IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
LIST_CONTACTS = int(os.environ.get("BENCH_LIST_CONTACTS", "1000000"))
RUNS = int(os.environ.get("BENCH_LIST_RUNS", "30"))


def make_csv(path: str, rows: int, rng: random.Random) -> None:
    seen: list[str] = []
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("phone,name,email,tags,opt_in,plan\n")
        for n in range(rows):
            roll = rng.random()
            if roll < 0.05:
                phone = f"12{n}"  # invalid
            elif roll < 0.10 and seen:
                previous = rng.choice(seen)
                # the same person again, half the time in WhatsApp's old Brazilian form
                phone = previous[1:5] + previous[6:] if rng.random() < 0.5 else previous
            else:
                phone = f"+551198{n:07d}"  # a mobile: 9 + 8 digits starting with 8
                seen.append(phone)
            out.write(f"{phone},Person {n},p{n}@example.com,{rng.choice(['vip', 'sp|rj', ''])},"
                      f"{rng.choice(['yes', 'no'])},{rng.choice(['gold', 'silver', ''])}\n")


def sample_rss(pid: int, peak: list[int], stop: threading.Event) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            members = [process, *process.children(recursive=True)]
            peak[0] = max(peak[0], max(p.memory_info().rss for p in members))
        except psutil.Error:
            pass
        time.sleep(0.02)


def bench_import(settings: Settings, client, headers: dict, org_id: uuid.UUID) -> None:
    from shared.db import unit_of_work
    from shared.models import Job

    rng = random.Random(7)
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as handle:
        path = handle.name
    make_csv(path, IMPORT_ROWS, rng)
    size_mb = os.path.getsize(path) / 1e6

    env = {**os.environ, "DATABASE_URL": settings.database_url, "LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(PROJECT_ROOT), "PYTAKE_DATA_DIR": str(settings.data_dir)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", MAINTENANCE, "-n", "bench-import@%h",
         "--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    peak, stop = [0], threading.Event()
    try:
        time.sleep(4)  # the worker boots
        sampler = threading.Thread(target=sample_rss, args=(worker.pid, peak, stop), daemon=True)
        baseline = max(p.memory_info().rss for p in [psutil.Process(worker.pid), *psutil.Process(worker.pid).children()])
        sampler.start()
        started, started_at = time.perf_counter(), dt.datetime.now(dt.timezone.utc)
        with open(path, "rb") as data:
            upload = client.post("/api/v1/contacts/imports", data={"file": (data, "bench.csv")}, headers=headers,
                                 content_type="multipart/form-data").get_json()
        mapping = {"columns": {"phone": "phone", "name": "name", "email": "email", "tags": "tags",
                               "opt_in": "marketing_opt_in"}}
        job_id = client.post(f"/api/v1/contacts/imports/{upload['id']}/start", json=mapping, headers=headers).get_json()["job_id"]
        requested = time.perf_counter() - started
        while True:
            with unit_of_work() as session:
                job = session.get(Job, job_id)
                if job.status.is_terminal:
                    break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        if job.status.value != "succeeded":
            raise SystemExit(f"import failed: {job.error_code} {job.error_message}")
        result = job.result
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        os.unlink(path)
    rate, rss_mb = IMPORT_ROWS / elapsed, peak[0] / 2**20
    print(f"import: {IMPORT_ROWS} rows ({size_mb:.1f} MB)   {rate:8.0f} rows/s   ({elapsed:.2f} s upload→succeeded)"
          f"   target >= 20000 rows/s  {'PASS' if rate >= 20_000 else 'FAIL'}")
    print(f"        created {result['created']}, duplicates {result['duplicates_in_file']}, invalid {result['invalid']}")
    print(f"        worker peak RSS {rss_mb:.0f} MB (idle {baseline / 2**20:.0f} MB)   target < 250 MB  "
          f"{'PASS' if rss_mb < 250 else 'FAIL'}")
    print(f"        upload and start {requested:.2f} s, then the job: picked up "
          f"{(job.started_at - started_at).total_seconds() - requested:.2f} s later, ran "
          f"{(job.finished_at - job.started_at).total_seconds():.2f} s, seen "
          f"{elapsed - (job.finished_at - started_at).total_seconds():.2f} s after it finished")


def load_million(session_factory, org_id: uuid.UUID, n: int) -> None:
    with session_factory() as session:
        session.execute(text("""
            INSERT INTO contacts (organization_id, wa_id, phone_e164, identity_key, name, email, lifecycle_stage,
                                  lead_score, marketing_consent, custom_attributes, last_inbound_at, created_at)
            SELECT :org, '55119' || lpad(i::text, 8, '0'), '+55119' || lpad(i::text, 8, '0'),
                   '5511' || lpad(i::text, 8, '0'),
                   (ARRAY['Ana','Bruno','Carla','Davi','Eva','Fabio','Gabi','Hugo'])[1 + i % 8] || ' ' || i,
                   'c' || i || '@example.com',
                   (ARRAY['lead','prospect','customer','churned'])[1 + (i * 7) % 4]::text,
                   (i * 37) % 100,
                   (ARRAY['unknown','opted_in','opted_out'])[1 + (i * 11) % 3]::consent_state,
                   jsonb_build_object('plan', (ARRAY['gold','silver','bronze'])[1 + (i * 13) % 3], 'spend', (i * 17) % 5000),
                   now() - make_interval(hours => (i % 2000)),
                   now() - make_interval(secs => i)
            FROM generate_series(1, :n) AS i
        """), {"org": org_id, "n": n})
        session.execute(text("INSERT INTO attribute_definitions (organization_id, key, label, type) VALUES "
                             "(:org, 'plan', 'Plan', 'text'), (:org, 'spend', 'Spend', 'number')"), {"org": org_id})
        session.execute(text("INSERT INTO tags (organization_id, name) SELECT :org, unnest(ARRAY['vip','sp','rj','churn-risk'])"),
                        {"org": org_id})
        session.execute(text("""
            INSERT INTO contact_tags (contact_id, tag_id)
            SELECT c.id, t.id FROM contacts c JOIN tags t ON t.organization_id = c.organization_id
            WHERE c.organization_id = :org AND (
                (t.name = 'vip' AND c.lead_score >= 90) OR (t.name = 'sp' AND c.lead_score % 3 = 0)
                OR (t.name = 'rj' AND c.lead_score % 5 = 0) OR (t.name = 'churn-risk' AND c.lead_score < 5))
        """), {"org": org_id})
        session.commit()
    with session_factory() as session:
        session.connection().exec_driver_sql("ANALYZE contacts; ANALYZE contact_tags; ANALYZE tags;")
        session.commit()


FILTERS = [
    ("newest first (no filter)", ""),
    ("tag vip", "tags_any=vip"),
    ("customers opted in", "lifecycle_stages=customer&marketing_consent=opted_in"),
    ("attribute plan = gold, by score", "attr=plan:eq:gold&sort=-lead_score"),
    ("free text 'gabi 7731'", "q=gabi%207731"),
]


def bench_list(client, headers: dict) -> None:
    print(f"list over {LIST_CONTACTS:,} contacts, {RUNS} runs each (limit 50):")
    for label, query in FILTERS:
        client.get(f"/api/v1/contacts/?{query}", headers=headers)  # warm
        samples = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            response = client.get(f"/api/v1/contacts/?{query}", headers=headers)
            samples.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.get_json()
        ordered = sorted(samples)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        count = len(response.get_json()["items"])
        print(f"  {label:<34} p50 {statistics.median(samples):7.1f} ms   p95 {p95:7.1f} ms   ({count} on page 1)")


def main() -> None:
    base = Settings.from_env()
    admin = make_url(base.database_url)
    name = f"pytake_bench_{uuid.uuid4().hex[:8]}"
    plain_admin = admin.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = base.with_overrides(
        database_url=admin.set(database=name).render_as_string(hide_password=False), log_level="WARNING",
        max_upload_bytes=500 * 2**20,
    )
    use_settings(settings)
    configure_logging(settings)
    try:
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.attributes.update(database_url=settings.database_url, skip_logging_config=True)
        command.upgrade(config, "head")
        run(settings)
    finally:
        from shared import db

        db.dispose_engine()
        with psycopg.connect(plain_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(settings: Settings) -> None:
    from shared.db import new_session, unit_of_work
    from shared.models import Organization
    from shared.services import users
    from web import create_app
    from web.auth import issue_tokens

    app = create_app(settings)
    client = app.test_client()
    with unit_of_work() as session:
        user, org = users.register(session, email="bench@example.com", password="Password123!", full_name="Bench")
        session.get(Organization, org.id).plan_code = "enterprise"
        import_org = org.id
        user_id = user.id
    with app.app_context(), unit_of_work() as session:
        headers = {"Authorization": f"Bearer {issue_tokens(session.get(type(user), user_id))['access_token']}"}
    bench_import(settings, client, headers, import_org)
    if not LIST_CONTACTS:  # BENCH_LIST_CONTACTS=0: the import only (bench/throughput.py)
        return

    with unit_of_work() as session:
        other, org2 = users.register(session, email="bench2@example.com", password="Password123!", full_name="Bench 2")
        session.get(Organization, org2.id).plan_code = "enterprise"
        list_org, other_id = org2.id, other.id
    t0 = time.perf_counter()
    load_million(new_session, list_org, LIST_CONTACTS)
    print(f"(loaded {LIST_CONTACTS:,} contacts in {time.perf_counter() - t0:.0f} s)")
    with app.app_context(), unit_of_work() as session:
        headers = {"Authorization": f"Bearer {issue_tokens(session.get(type(other), other_id))['access_token']}"}
    bench_list(client, headers)


if __name__ == "__main__":
    main()
