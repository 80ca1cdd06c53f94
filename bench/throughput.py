"""Benchmark: every figure of the message pipeline's throughput work, in one run, with its target.

Run on a quiet machine (nothing else on its cores) with `make bench-throughput`, or:

    .venv/bin/python -m shared.embedded -- .venv/bin/python bench/throughput.py

It runs, one after the other (never side by side: each needs the machine to itself), the benchmarks
that measure the path and prints each one's own report as it goes, then a summary of every line
that carries a target (a PASS or a FAIL):

- bench/webhook_intake.py: intake vs bare Flask under the Procfile's gunicorn settings (gunicorn.conf.py); p99 at 500 req/s;
- bench/conversations.py: inbound rate in batches of 50 and latency at 100 webhooks/s; outbound pacing
  of 2 numbers at 80/s; the outbound ceiling (statuses off, then `sent` and `delivered` on);
- bench/send_request.py: `POST /conversations/{id}/messages` vs bare Flask;
- bench/contacts.py, import phase only (BENCH_LIST_CONTACTS=0): 100,000 rows, rows/s and peak RSS;
- bench/sandbox.py: the sandbox's own cost per send, when it exists.

BENCH_ONLY=intake,conversations,... runs a subset. The load average is printed before each benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, script, extra environment); each one already prints its targets.
BENCHMARKS = [
    ("intake", "bench/webhook_intake.py", {}),
    ("conversations", "bench/conversations.py", {}),
    ("conversations-statuses", "bench/conversations.py",
     {"BENCH_PHASES": "ceiling", "BENCH_OUTBOUND_STATUSES": "sent,delivered"}),
    ("send_request", "bench/send_request.py", {}),
    ("import", "bench/contacts.py", {"BENCH_LIST_CONTACTS": "0"}),
    ("sandbox", "bench/sandbox.py", {}),
]


def main() -> int:
    only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
    summary: list[tuple[str, str]] = []
    failed_runs = []
    for name, script, extra in BENCHMARKS:
        if only and name not in only:
            continue
        if not (ROOT / script).exists():
            print(f"== {name}: {script} does not exist, skipped")
            continue
        print(f"\n== {name}: {script} {' '.join(f'{k}={v}' for k, v in extra.items())}  "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
        started = time.monotonic()
        process = subprocess.run([sys.executable, script], cwd=ROOT, env={**os.environ, **extra},
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(process.stdout, end="", flush=True)
        print(f"-- {name}: {time.monotonic() - started:.0f} s, exit {process.returncode}")
        if process.returncode != 0:
            failed_runs.append(name)
        summary += [(name, line.strip()) for line in process.stdout.splitlines()
                    if "PASS" in line or "FAIL" in line]
    print("\n== summary: every figure with a target")
    for name, line in summary:
        print(f"{name:<24} {line}")
    if failed_runs:
        print(f"benchmarks that did not finish: {', '.join(failed_runs)}")
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
