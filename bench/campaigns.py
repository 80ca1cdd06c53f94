"""Benchmark: a 100,000-recipient campaign over 2 numbers through the Cloud API sandbox (issue 12).

Run alone on the machine with `make bench-campaigns` (BENCH_ARGS="--recipients 10000" for a quick check), or:

    .venv/bin/python -m shared.embedded -- .venv/bin/python bench/campaigns.py [--recipients 100000] [--help]

Targets (issue 12):
1. ledger: the audience resolved into the recipients ledger at >= 50,000 recipients/s. Measured twice: in-process
   (`campaign_audience.resolve_into_ledger` on the whole audience, rolled back) and as the campaigns pool did it
   at the start of the ceiling phase (its log line `campaigns.resolved`, read from the campaign's times).
2. pacing: --pacing-seconds (60) of a campaign over 2 numbers registered at Meta's default 80 messages/s (the
   sandbox enforces 80/s and answers 130429 past it): each number's rate at the sandbox within 2% of 80 over
   the steady part (first and last 5 s left out), and zero 130429.
3. ceiling: the numbers at 1,000/s (PyTake and the sandbox), --recipients (100,000) over both: messages/s at the
   sandbox from the first send to the last, target >= 500/s; the campaigns worker's RSS (its processes, peak of
   the samples and at the end), target < 250 MB at the end.

Everything goes through the API as a user would (sign-in, numbers, a campaign to a tag, start, progress), except
the contacts (100,000 made set-wise in SQL, opted in to marketing and tagged) and the template (stored approved
in PyTake and in the sandbox: template review is not what is measured). Status webhooks are off unless
--statuses. Processes: the sandbox, web, the campaigns and sends pools as the Procfile starts them, and beat;
a database of its own (dropped at the end), a Redis database index of its own (flushed at the end).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import requests

from shared.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # run as a script (make bench): the helpers live beside it
from bench.bots import Api, Sandbox, load, start_platform, verdict  # noqa: E402
from bench.conversations import CpuMeter, Proc  # noqa: E402
from bench.stores import create_database, isolate, remove  # noqa: E402

TARGET_LEDGER_PER_SECOND = 50_000
TARGET_PACE = 80.0
TARGET_CEILING = 500.0
TARGET_RSS_MB = 250
PASSWORD = "Bench-Campaigns-Password-123!"
EMAIL = "bench-campaigns-admin@example.com"
TAG = "bench-audience"
TEMPLATE = {"name": "spring_sale", "language": "en_US", "category": "MARKETING",
            "components": [{"type": "BODY", "text": "Hi {{1}}, your code is {{2}}. See you soon!",
                            "example": {"body_text": [["Ana", "SAVE5"]]}}]}
VARIABLES = {"body": [{"source": "contact.first_name", "fallback": "there"},
                      {"source": "attribute.coupon", "fallback": "SPRING10"}]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="bench/campaigns.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--recipients", type=int, default=int(env("BENCH_CAMPAIGN_RECIPIENTS", "100000")))
    parser.add_argument("--pacing-seconds", type=float, default=60.0)
    parser.add_argument("--phases", default=env("BENCH_CAMPAIGN_PHASES", "ledger,pacing,ceiling"))
    parser.add_argument("--statuses", default="", help="sandbox status webhooks, e.g. sent,delivered (default none)")
    parser.add_argument("--campaigns-concurrency", type=int, default=int(env("WORKER_CONCURRENCY", "2")))
    parser.add_argument("--sends-concurrency", type=int, default=int(env("SENDS_CONCURRENCY", "4")))
    parser.add_argument("--redis-db", type=int, default=int(env("BENCH_REDIS_DB", "12")))
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on a phase after this long")
    parser.add_argument("--keep-logs", action="store_true", default=bool(env("BENCH_KEEP_LOGS")))
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if set(args.phases) - {"ledger", "pacing", "ceiling"} or args.recipients < 10:
        parser.error("phases are ledger, pacing and ceiling; at least 10 recipients")
    args.statuses = [s.strip() for s in args.statuses.split(",") if s.strip()]
    return args


# -- the world ------------------------------------------------------------------------------------------------


def create_tenant(count: int) -> tuple[uuid.UUID, uuid.UUID]:
    """The organization, its admin, the approved template and `count` opted-in, tagged contacts, set-wise."""
    from sqlalchemy import text

    from shared.db import unit_of_work
    from shared.models import AttributeDefinition, AttributeType, Organization, Tag, User
    from shared.models.base import utcnow
    from shared.permissions import Role
    from shared.security import hash_password

    with unit_of_work() as session:
        org = Organization(name="Campaigns bench", plan_code="enterprise")
        session.add(org)
        session.flush()
        session.add(User(organization_id=org.id, email=EMAIL, password_hash=hash_password(PASSWORD),
                         full_name="Bench Admin", role=Role.org_admin, tokens_valid_after=utcnow()))
        session.add(AttributeDefinition(organization_id=org.id, key="coupon", label="Coupon", type=AttributeType.text))
        tag = Tag(organization_id=org.id, name=TAG)
        session.add(tag)
        session.flush()
        session.execute(text("""
            INSERT INTO contacts (organization_id, wa_id, phone_e164, identity_key, name, marketing_consent,
                                  custom_attributes)
            SELECT :org, '1650' || lpad(n::text, 7, '0'), '+1650' || lpad(n::text, 7, '0'),
                   '1650' || lpad(n::text, 7, '0'), 'Customer ' || n, 'opted_in',
                   CASE WHEN n % 2 = 0 THEN jsonb_build_object('coupon', 'C' || n) ELSE '{}'::jsonb END
            FROM generate_series(1, :count) AS n"""), {"org": org.id, "count": count})
        session.execute(text("""
            INSERT INTO contact_tags (contact_id, tag_id) SELECT id, :tag FROM contacts WHERE organization_id = :org"""),
            {"tag": tag.id, "org": org.id})
        return org.id, tag.id


def create_numbers(api: Api, sandbox: Sandbox, callback_url: str, statuses: list[str], mps: int) -> list[dict]:
    suffix = uuid.uuid4().int
    waba_id = f"66{suffix % 10**10:010d}"
    numbers = []
    for index in range(2):
        spec = {"waba_id": waba_id, "phone_number_id": f"99{(suffix + index) % 10**10:010d}",
                "display_phone_number": f"1555{(suffix // 7 + index) % 10**7:07d}",
                "access_token": f"EAAG-bench-campaigns-{uuid.uuid4().hex}",
                "app_secret": f"bench-campaigns-{uuid.uuid4().hex}"}
        created = api.call("POST", "/numbers", expect=201, json={**spec, "throughput_mps": mps})
        sandbox.call("POST", "/numbers", json={
            **spec, "callback_url": callback_url, "throughput_mps": mps, "pair_rate_interval_seconds": 0.001,
            "pair_rate_burst": 1_000_000, "auto_statuses": statuses})
        numbers.append({**spec, "id": created["id"]})
    sandbox.call("POST", "/templates", json={**TEMPLATE, "waba_id": waba_id, "status": "APPROVED"})
    return numbers


def unlimited_tier(numbers: list[dict]) -> None:
    """What a number sync reads from Meta for a business past its limits (the bench does not sync)."""
    from sqlalchemy import update

    from shared.db import unit_of_work
    from shared.models import WhatsAppNumber

    with unit_of_work() as session:
        session.execute(update(WhatsAppNumber).where(WhatsAppNumber.id.in_([n["id"] for n in numbers]))
                        .values(messaging_limit_tier="TIER_UNLIMITED").execution_options(all_tenants=True))


def store_template(org_id: uuid.UUID, waba_id: str) -> uuid.UUID:
    from shared.db import unit_of_work
    from shared.models import MessageTemplate

    with unit_of_work() as session:
        template = MessageTemplate(organization_id=org_id, waba_id=waba_id, status="APPROVED", **TEMPLATE)
        session.add(template)
        session.flush()
        return template.id


def set_throughput(api: Api, sandbox: Sandbox, numbers: list[dict], mps: int) -> None:
    for number in numbers:
        api.call("PATCH", f"/numbers/{number['id']}", json={"throughput_mps": mps})
        sandbox.call("PATCH", f"/numbers/{number['phone_number_id']}", json={"throughput_mps": mps})


# -- phases ---------------------------------------------------------------------------------------------------


def ledger_in_process(org_id: uuid.UUID, campaign_id: str) -> tuple[int, float]:
    """The audience resolved into the ledger in this process, timed, then rolled back."""
    from shared.db import get_engine
    from sqlalchemy.orm import Session

    from shared.models import Campaign, MessageTemplate, Organization
    from shared.services import campaign_audience

    with get_engine().connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection)
        org = session.get(Organization, org_id)
        campaign = session.get(Campaign, uuid.UUID(campaign_id))
        template = session.get(MessageTemplate, campaign.template_id)
        started = time.perf_counter()
        total, _ = campaign_audience.resolve_into_ledger(session, org=org, campaign=campaign,
                                                         template_category=template.category)
        elapsed = time.perf_counter() - started
        session.close()
        transaction.rollback()
    return total, elapsed


def campaign(api: Api, template_id: uuid.UUID, numbers: list[dict], name: str, limit: int | None = None) -> dict:
    audience = {"type": "tags", "tags_any": [TAG]}
    body = {"name": name, "template_id": str(template_id), "variables": VARIABLES, "audience": audience,
            "number_ids": [n["id"] for n in numbers]}
    created = api.call("POST", "/campaigns", expect=201, json=body)
    if limit is not None:
        created["limit"] = limit
    return created


def sandbox_sends(sandbox: Sandbox) -> list[dict]:
    return sandbox.call("GET", "/requests", params={"kind": "messages"})["data"]


def run_campaign(api: Api, sandbox: Sandbox, created: dict, procs: dict[str, Proc], args, *, stop_after: float | None,
                 rss: list[float]) -> dict:
    """Start it, follow its progress until it completes (or `stop_after` seconds, then cancel it)."""
    api.call("POST", f"/campaigns/{created['id']}/start", expect=202)
    started = time.monotonic()
    deadline = started + args.timeout
    while True:
        for proc in procs.values():
            proc.check()
        progress = api.call("GET", f"/campaigns/{created['id']}/progress")
        rss.append(tree_rss_mb(procs["campaigns"].process.pid))
        if progress["status"] in ("completed", "cancelled", "failed", "paused"):
            return progress
        if stop_after is not None and time.monotonic() - started > stop_after:
            api.call("POST", f"/campaigns/{created['id']}/cancel")
            return api.call("GET", f"/campaigns/{created['id']}/progress")
        if time.monotonic() > deadline:
            raise SystemExit(f"campaign {created['id']} did not finish within {args.timeout:.0f} s: {progress}")
        time.sleep(1.0)


def sent_twice(sends: list[dict], campaign_id: str) -> int:
    """Recipients of this campaign who reached the sandbox more than once (any earlier campaign's late sends to
    the same people are told apart by the message id each request carries)."""
    from sqlalchemy import text

    from shared.db import unit_of_work
    from shared.services.messages import message_id_from_callback

    ids = [message_id_from_callback((s["body"] or {}).get("biz_opaque_callback_data")) for s in sends
           if s["status_code"] == 200]
    with unit_of_work() as session:
        ours = dict(session.execute(text(
            "SELECT id, contact_id FROM messages WHERE campaign_id = :campaign AND id = ANY(CAST(:ids AS uuid[]))"),
            {"campaign": campaign_id, "ids": [str(i) for i in ids if i]}).all())
    per_contact = collections.Counter(ours[i] for i in ids if i in ours)
    repeated = sum(1 for n in collections.Counter(ids).values() if n > 1)
    if repeated:
        print(f"  !! {repeated} message ids reached the sandbox more than once", flush=True)
    return sum(1 for n in per_contact.values() if n > 1)


def tree_rss_mb(pid: int) -> float:
    """The largest RSS among the worker's processes (its main process and its prefork children)."""
    try:
        root = psutil.Process(pid)
        return max(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


def per_number_rates(sends: list[dict], numbers: list[dict], trim: float) -> dict[str, float]:
    rates = {}
    for number in numbers:
        times = sorted(s["at"] for s in sends if s["object_id"] == number["phone_number_id"]
                       and s["status_code"] == 200)
        if len(times) < 2:
            rates[number["phone_number_id"]] = 0.0
            continue
        lo, hi = times[0] + trim, times[-1] - trim
        steady = [t for t in times if lo <= t <= hi]
        rates[number["phone_number_id"]] = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 else 0.0
    return rates


def throttled(sends: list[dict]) -> int:
    return sum(1 for s in sends if s["error_code"] == 130429)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stores = isolate("pytake_bench_campaigns", args.redis_db)
    log_dir = Path(tempfile.mkdtemp(prefix="pytake-bench-campaigns-"))
    procs: dict[str, Proc] = {}
    sandbox: Sandbox | None = None
    numbers: list[dict] = []
    org_id = None
    failed = True
    try:
        create_database(stores)
        made = time.perf_counter()
        org_id, _ = create_tenant(args.recipients)
        print(f"campaigns bench: {os.cpu_count()} CPUs, {load()}; {args.recipients:,} contacts made in SQL in "
              f"{time.perf_counter() - made:.1f} s", flush=True)

        sandbox_url, web_url = start_platform(
            procs, {"campaigns": (args.campaigns_concurrency, 1), "sends": (args.sends_concurrency, 1),
                    "webhooks": (2, 1)}, beat=True, log_dir=log_dir, keep_logs=args.keep_logs)
        sandbox = Sandbox(sandbox_url, procs["sandbox"].process.pid)
        sandbox.call("PATCH", "/config", json={"log_limit": 2_000_000})
        api = Api(web_url)
        api.sign_in(EMAIL, PASSWORD)
        numbers = create_numbers(api, sandbox, f"{web_url}/api/v1/webhooks/whatsapp", args.statuses, 80)
        unlimited_tier(numbers)
        template_id = store_template(org_id, numbers[0]["waba_id"])
        meter = CpuMeter(procs)
        summary: list[str] = []

        if "ledger" in args.phases:
            draft = campaign(api, template_id, numbers, "Ledger (in-process)")
            total, elapsed = ledger_in_process(org_id, draft["id"])
            rate = total / elapsed
            print(f"\nledger, in-process: {total:,} rows in {elapsed:.2f} s", flush=True)
            summary.append(f"ledger in-process: {rate:,.0f} recipients/s (target >= {TARGET_LEDGER_PER_SECOND:,}) "
                           f"{verdict(rate >= TARGET_LEDGER_PER_SECOND)}")

        if "pacing" in args.phases:
            print(f"\npacing phase: 2 numbers at {TARGET_PACE:.0f}/s for {args.pacing_seconds:.0f} s; {load()}",
                  flush=True)
            sandbox.empty_logs()
            rss: list[float] = []
            before = meter.sample()
            progress = run_campaign(api, sandbox, campaign(api, template_id, numbers, "Pacing"), procs, args,
                                    stop_after=args.pacing_seconds, rss=rss)
            time.sleep(3)  # in-flight sends land
            sends = sandbox_sends(sandbox)
            rates = per_number_rates(sends, numbers, trim=5.0)
            storms = throttled(sends)
            first = min((s["at"] for s in sends), default=0.0)
            for number in numbers:
                mine = sorted(s["at"] for s in sends if s["object_id"] == number["phone_number_id"])
                busiest = max((bisect.bisect_right(mine, t + 1.0) - i for i, t in enumerate(mine)), default=0)
                hits = [f"{s['at'] - first:.1f}s" for s in sends
                        if s["object_id"] == number["phone_number_id"] and s["error_code"] == 130429]
                print(f"  number {number['phone_number_id'][-4:]}: most requests in any 1 s span {busiest}; "
                      f"130429 at {', '.join(hits[:10]) or 'none'}", flush=True)
            print(f"  {len(sends):,} sends at the sandbox, progress {progress['done']:,} done; "
                  + CpuMeter.line(before, meter.sample(), max(1, len(sends))), flush=True)
            lo, hi = TARGET_PACE * 0.98, TARGET_PACE * 1.02
            for number_id, rate in rates.items():
                summary.append(f"pacing number {number_id[-4:]}: {rate:.2f} messages/s (target {lo:.1f}-{hi:.1f}) "
                               f"{verdict(lo <= rate <= hi)}")
            summary.append(f"130429 during pacing: {storms} (target 0) {verdict(storms == 0)}")

        if "ceiling" in args.phases:
            set_throughput(api, sandbox, numbers, 1000)
            print(f"\nceiling phase: {args.recipients:,} recipients over 2 numbers at 1,000/s; {load()}", flush=True)
            sandbox.empty_logs()
            rss = []
            before = meter.sample()
            created = campaign(api, template_id, numbers, "Ceiling")
            progress = run_campaign(api, sandbox, created, procs, args, stop_after=None, rss=rss)
            time.sleep(2)
            sends = sandbox_sends(sandbox)
            ok = sorted(s["at"] for s in sends if s["status_code"] == 200)
            rate = (len(ok) - 1) / (ok[-1] - ok[0]) if len(ok) > 1 else 0.0
            twice = sent_twice(sends, created["id"])
            detail = api.call("GET", f"/campaigns/{created['id']}")
            resolved = _resolution_seconds(created["id"])
            print(f"  {progress['status']}: {len(ok):,} sends in {ok[-1] - ok[0]:.1f} s, recipients sent twice "
                  f"{twice}; audience resolved by the pool in {resolved:.2f} s ({detail['recipients_total']:,} rows); "
                  + CpuMeter.line(before, meter.sample(), max(1, len(ok))), flush=True)
            ledger_rate = detail["recipients_total"] / resolved if resolved else 0.0
            summary.append(f"ledger by the campaigns pool, start request -> ledger written (task pick-up included): "
                           f"{resolved:.2f} s, {ledger_rate:,.0f} recipients/s")
            summary.append(f"ceiling: {rate:,.0f} messages/s (target >= {TARGET_CEILING:.0f}) "
                           f"{verdict(rate >= TARGET_CEILING)}; recipients of this campaign sent twice: {twice} "
                           f"{verdict(twice == 0)}")
            end_rss = tree_rss_mb(procs["campaigns"].process.pid)
            summary.append(f"campaigns worker RSS (its largest process): {rss[0]:.0f} MB at the start, {end_rss:.0f} MB "
                           f"at the end, peak {max(rss):.0f} MB (target < {TARGET_RSS_MB} MB at the end) "
                           f"{verdict(end_rss < TARGET_RSS_MB)}")

        for proc in procs.values():
            proc.check()
        print(f"\nsummary ({os.cpu_count()} CPUs; pools campaigns {args.campaigns_concurrency}, sends "
              f"{args.sends_concurrency}; {load()} at the end)")
        for line in summary:
            print(f"  {line}")
        failed = False
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if failed:
            for proc in procs.values():
                print(f"--- {proc.name} log (tail) ---\n{proc.log_tail(20)}", file=sys.stderr)
        if sandbox is not None:
            try:
                for number in numbers:
                    sandbox.call("PATCH", f"/numbers/{number['phone_number_id']}", json={"callback_url": None})
                sandbox.call("POST", "/drain", json={"timeout": 10})
            except (SystemExit, requests.RequestException):
                pass
        for name in ("beat", "campaigns", "sends", "webhooks", "web", "sandbox"):
            if name in procs:
                procs[name].stop()
        remove(stores, org_id)
        if args.keep_logs:
            print(f"process logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


def _resolution_seconds(campaign_id: str) -> float:
    from sqlalchemy import select

    from shared.db import unit_of_work
    from shared.models import Campaign

    with unit_of_work() as session:
        started, resolved = session.execute(select(Campaign.started_at, Campaign.audience_resolved_at).where(
            Campaign.id == uuid.UUID(campaign_id)).execution_options(all_tenants=True)).one()
    return (resolved - started).total_seconds() if started and resolved else 0.0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench/campaigns.py: interrupted; every process it started is stopped and its data removed",
              file=sys.stderr)
        sys.exit(130)
