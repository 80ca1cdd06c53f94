"""Benchmark: the Cloud API sandbox's own cost per send, against a bare Flask endpoint on the same server.

Run with `make bench-throughput` (BENCH_ONLY=sandbox), or on its own (it needs no database, Redis or MongoDB):

    .venv/bin/python bench/sandbox.py

Why it matters (issue 9): every send the platform makes is at least one HTTP request to the sandbox, and
the tests, the demo and every benchmark run on it, on the same 2 cores as the platform. 2 cores give 2,000
ms of CPU per second: at 500 messages/s, 4 ms per message for everything (the platform's web, workers,
stores, and the sandbox), and a Python client and a Flask server then took about 2 ms of that per request
between them. The sandbox plays Meta, which costs the real platform nothing: each millisecond it spends is
taken from the system under test. Targets, in the sandbox's CPU per accepted send:

- statuses off: <= 0.5 ms, i.e. at most 1/8 of the machine at 500 sends/s. A bare Flask endpoint on the
  same server is the floor (printed): Meta's rules (validation, limits, windows, the request log) may add
  little on top of the HTTP request itself;
- `sent` and `delivered` status webhooks on: <= 1.0 ms per send, its two signed webhook POSTs included
  (1/4 of the machine at 500 sends/s). A send then costs the sandbox three HTTP exchanges, one served and
  two made, so about twice the cost of a send alone is what a lean sender can reach.

What runs:
1. the sandbox exactly as the Procfile starts it (`python -m sandbox --host 127.0.0.1 --port <free port>`,
   access log included), logging to a temporary file; its state is in memory, so nothing else to isolate;
2. one number registered through the control API with throughput and pair rate out of the way (nothing is
   refused: this measures cost, not limits) and BENCH_SANDBOX_CUSTOMERS customers (200) whose windows a
   simulated inbound message opens;
3. closed loops of BENCH_SANDBOX_REQUESTS text sends (4,000) over BENCH_SANDBOX_CLIENTS connections (2, one
   forked process each, raw HTTP/1.1 with pre-built requests, kept alive unless the server answers
   `Connection: close`), after a warm-up: (a) status webhooks off; (b) `sent` and `delivered` on, delivered
   to a tiny local receiver (its own process) that answers 200 and counts them; (c) the floor: a bare Flask
   app whose one POST route reads the JSON body and answers a small JSON object, served by
   `sandbox.server.serve` (the sandbox's own server settings);
4. BENCH_SANDBOX_ROUNDS rounds (3) of (c), (a), (b), interleaved so that a busy spell on the machine spreads
   over all three; each figure is the median round. The server's CPU is read from /proc/<pid>/stat (user
   and system, every thread) before a loop and after its last answer, or in (b) after the last webhook was
   delivered (`POST /_sandbox/drain`).
BENCH_SANDBOX_ROOT runs `python -m sandbox` (and the floor's server) from another directory, e.g. an older
`git archive <commit> sandbox | tar -x -C /tmp/before`, for a before/after on the same machine. The load
average is printed before and after: wall-clock rates move with whatever else runs on the machine; the CPU
per request is the figure to judge.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from shared.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
# Where `python -m sandbox` runs from: another checkout's sandbox/ (e.g. `git archive <commit> sandbox`) for a before/after.
SANDBOX_ROOT = Path(os.environ.get("BENCH_SANDBOX_ROOT") or ROOT)
REQUESTS = int(os.environ.get("BENCH_SANDBOX_REQUESTS", "4000"))
CLIENTS = int(os.environ.get("BENCH_SANDBOX_CLIENTS", "2"))
CUSTOMERS = int(os.environ.get("BENCH_SANDBOX_CUSTOMERS", "200"))
WARMUP = int(os.environ.get("BENCH_SANDBOX_WARMUP", "600"))
ROUNDS = int(os.environ.get("BENCH_SANDBOX_ROUNDS", "3"))
TARGET_MS_STATUSES_OFF = 0.5
TARGET_MS_STATUSES_ON = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

NUMBER = {"phone_number_id": "990300400501", "waba_id": "990300400500", "display_phone_number": "15550199301",
          "access_token": "EAAG-sandbox-bench-token", "app_secret": "sandbox-bench-app-secret",
          "throughput_mps": 1_000_000, "pair_rate_interval_seconds": 0.000001, "pair_rate_burst": 1_000_000,
          "auto_statuses": [], "callback_url": None}
SEND_PATH = f"/v24.0/{NUMBER['phone_number_id']}/messages"

# The floor: the same server as the sandbox (sandbox.server.serve), one route, no rules behind it.
BARE_APP = f'''
import sys
from flask import Flask, request
from sandbox.server import serve

app = Flask("bare")


@app.post("{SEND_PATH}")
def send():
    request.get_json()
    return {{"messaging_product": "whatsapp", "messages": [{{"id": "wamid.bare", "message_status": "accepted"}}]}}


serve(app, host="127.0.0.1", port=int(sys.argv[1]))
'''


# -- processes and their CPU -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU of a process, all its threads included (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, path: str, method: str = "GET") -> None:
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                requests.request(method, self.base + path, timeout=2)
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{self.name} did not answer within 60 s:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(name: str, argv: list[str], work_dir: Path) -> Server:
    port = free_port()
    log_path = work_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([*argv, str(port)] if name == "bare" else [*argv, "--port", str(port)],
                                   cwd=SANDBOX_ROOT, env={**os.environ, "PYTHONPATH": str(SANDBOX_ROOT)},
                                   stdout=log_file, stderr=subprocess.STDOUT)
    return Server(name, port, process, log_path)


# -- the webhook receiver (its own process) ----------------------------------------------------------------


OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def receiver_process(port: int, ready, counts) -> None:
    """Answer every POST with 200 over keep-alive connections; count the posts and the statuses in them."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                with counts.get_lock():
                    counts[0] += 1
                    counts[1] += body.count(b'"status":"sent"')
                    counts[2] += body.count(b'"status":"delivered"')
                writer.write(OK_RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


# -- the load generator (forked processes) -----------------------------------------------------------------


class Connection:
    """A lean HTTP/1.1 client: keeps its connection alive unless the server answers `Connection: close`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.opened = 0  # connections opened: one per request when the server closes each

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.opened += 1
        self.sock.sendall(request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += self._receive()
        head, _, body = buffer.partition(b"\r\n\r\n")
        headers = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:])
        length = int(headers[b"content-length"])
        while len(body) < length:
            body += self._receive()
        if headers.get(b"connection", b"").strip() == b"close":
            self.close()
        return int(head.split(b" ", 2)[1]), body

    def _receive(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before the whole answer")
        return chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def send_request(port: int, serial: int) -> bytes:
    customer = 16505550000 + serial % CUSTOMERS
    body = json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual", "to": str(customer),
                       "type": "text", "text": {"body": f"Your order #{serial} ships today. Reply STOP to opt out."},
                       "biz_opaque_callback_data": f"bench:{serial}"}, separators=(",", ":")).encode()
    head = (f"POST {SEND_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: python-requests/2.34.2\r\n"
            f"Accept: */*\r\nAuthorization: Bearer {NUMBER['access_token']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def client_process(port: int, serials: range, barrier, out) -> None:
    batch = [send_request(port, serial) for serial in serials]
    connection = Connection(port)
    accepted, refused = 0, {}
    barrier.wait()
    cpu = time.process_time()
    for request in batch:
        status, body = connection.exchange(request)
        if status == 200 and b'"accepted"' in body:
            accepted += 1
        else:
            key = f"{status} {body[:120].decode(errors='replace')}"
            refused[key] = refused.get(key, 0) + 1
    out.put((accepted, refused, time.process_time() - cpu, connection.opened))
    connection.close()


@dataclass
class Run:
    accepted: int
    refused: dict
    seconds: float
    server_user: float  # seconds of the server process's CPU in Python (user) and in the kernel (system),
    server_system: float  # webhook deliveries included
    client_cpu: float
    connections: int

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    @property
    def requests(self) -> int:
        return self.accepted + sum(self.refused.values())

    def cpu_ms(self) -> float:
        return 1000 * (self.server_user + self.server_system) / max(1, self.requests)

    def system_ms(self) -> float:
        return 1000 * self.server_system / max(1, self.requests)


def closed_loop(server: Server, first_serial: int, total: int, settle=None) -> Run:
    """`total` sends over CLIENTS connections; the server's CPU runs until `settle()` (if any) returns."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(CLIENTS + 1), ctx.Queue()
    share = total // CLIENTS
    clients = [ctx.Process(target=client_process, daemon=True,
                           args=(server.port, range(first_serial + i * share, first_serial + (i + 1) * share),
                                 barrier, out)) for i in range(CLIENTS)]
    for client in clients:
        client.start()
    barrier.wait(timeout=120)
    cpu_before, started = cpu_seconds(server.process.pid), time.perf_counter()
    results = [out.get(timeout=600) for _ in clients]
    seconds = time.perf_counter() - started
    if settle is not None:
        settle()
    user, system = (after - before for after, before in zip(cpu_seconds(server.process.pid), cpu_before))
    for client in clients:
        client.join(timeout=10)
    refused: dict = {}
    for _, errors, _, _ in results:
        for key, count in errors.items():
            refused[key] = refused.get(key, 0) + count
    return Run(sum(r[0] for r in results), refused, seconds, user, system, sum(r[2] for r in results),
               sum(r[3] for r in results))


# -- the sandbox's control API -----------------------------------------------------------------------------


def control(server: Server, method: str, path: str, **body) -> dict:
    response = requests.request(method, f"{server.base}/_sandbox{path}", json=body, timeout=120)
    if response.status_code >= 400:
        raise SystemExit(f"sandbox {method} {path}: {response.status_code} {response.text[:500]}")
    return response.json()


def prepare_number(sandbox: Server) -> None:
    """One number nothing refuses, and every customer's window open (a simulated inbound message each)."""
    control(sandbox, "POST", "/numbers", **NUMBER)
    for n in range(CUSTOMERS):
        control(sandbox, "POST", f"/numbers/{NUMBER['phone_number_id']}/inbound",
                **{"from": str(16505550000 + n), "type": "text", "text": {"body": "hi"}})


def set_statuses(sandbox: Server, callback_url: str, *, on: bool) -> None:
    control(sandbox, "PATCH", f"/numbers/{NUMBER['phone_number_id']}", auto_statuses=["sent", "delivered"] if on else [],
            callback_url=callback_url if on else None)


def drained(sandbox: Server) -> None:
    if not control(sandbox, "POST", "/drain", timeout=300)["idle"]:
        raise SystemExit("the sandbox still had webhooks to deliver after 300 s")


# -- the run -----------------------------------------------------------------------------------------------


def main() -> None:
    load_before = os.getloadavg()
    work_dir = Path(tempfile.mkdtemp(prefix="pytake-bench-sandbox-"))
    ctx = multiprocessing.get_context("fork")
    receiver_port, receiver_ready, counts = free_port(), ctx.Event(), ctx.Array("q", 3)
    receiver = ctx.Process(target=receiver_process, args=(receiver_port, receiver_ready, counts), daemon=True)
    servers: list[Server] = []
    try:
        receiver.start()
        receiver_ready.wait(timeout=30)
        sandbox = start_server("sandbox", [sys.executable, "-m", "sandbox", "--host", "127.0.0.1"], work_dir)
        servers.append(sandbox)
        (work_dir / "bare_app.py").write_text(BARE_APP)
        bare = start_server("bare", [sys.executable, str(work_dir / "bare_app.py")], work_dir)
        servers.append(bare)
        sandbox.wait_ready("/_sandbox/config")
        bare.wait_ready(SEND_PATH, "POST")
        prepare_number(sandbox)

        callback_url = f"http://127.0.0.1:{receiver_port}/webhooks/whatsapp"
        closed_loop(bare, 0, WARMUP)
        set_statuses(sandbox, callback_url, on=True)
        closed_loop(sandbox, 0, WARMUP, settle=lambda: drained(sandbox))
        received_before = list(counts)
        runs: dict[str, list[Run]] = {"floor": [], "off": [], "on": []}
        for round_ in range(ROUNDS):  # interleaved, so that a busy spell on the machine spreads over all three
            serial = (1 + 3 * round_) * REQUESTS
            runs["floor"].append(closed_loop(bare, serial, REQUESTS))
            set_statuses(sandbox, callback_url, on=False)
            runs["off"].append(closed_loop(sandbox, serial + REQUESTS, REQUESTS))
            set_statuses(sandbox, callback_url, on=True)
            runs["on"].append(closed_loop(sandbox, serial + 2 * REQUESTS, REQUESTS, settle=lambda: drained(sandbox)))
        received = [after - before for after, before in zip(counts, received_before)]
        for server in servers:
            if server.process.poll() is not None:
                raise SystemExit(f"{server.name} died during the run:\n{server.log_tail()}")
        report(runs, received, load_before)
    finally:
        for server in servers:
            server.stop()
        receiver.terminate()
        receiver.join(timeout=5)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=Run.cpu_ms)[len(runs) // 2]


def report(runs: dict[str, list[Run]], received: list[int], load_before: tuple) -> None:
    def row(label: str, name: str, target_ms: float | None = None) -> None:
        run = median_run(runs[name])
        spread = " ".join(f"{r.cpu_ms():.2f}" for r in runs[name])
        target = "" if target_ms is None else (
            f"<= {target_ms:.2f} ms  {'PASS' if run.cpu_ms() <= target_ms else 'FAIL'}")
        print(f"{label:<44}{run.rate:>7.0f}/s{run.cpu_ms():>9.3f} ms{run.system_ms():>8.3f}{spread:>16}   {target}".rstrip())

    print(f"the sandbox: `python -m sandbox` as the Procfile starts it, from {SANDBOX_ROOT}; {os.cpu_count()} CPUs; {ROUNDS} rounds of closed "
          f"loops of {REQUESTS} text sends over {CLIENTS} keep-alive connections; load average {load_before[0]:.2f} before")
    print(f"{'server CPU per request, median of the rounds':<44}{'rate':>9}{'CPU':>12}{'kernel':>8}{'each round':>16}   target")
    row("bare Flask endpoint, same server (floor)", "floor")
    row("sandbox sends, status webhooks off", "off", TARGET_MS_STATUSES_OFF)
    row("sandbox sends, sent+delivered webhooks on", "on", TARGET_MS_STATUSES_ON)
    sends = sum(run.accepted for run in runs["on"])
    print(f"  webhooks received: {received[0]} POSTs for {sends} sends ({received[1]} sent, {received[2]} delivered; "
          f"expected {2 * sends} POSTs, {sends} of each); the CPU includes delivering them (until /_sandbox/drain)")
    for name, batch in runs.items():
        refused = sum(sum(run.refused.values()) for run in batch)
        if refused:
            print(f"  {name}: {refused} refused {dict(list(batch[0].refused.items())[:3])}")
    connections = {name: sum(run.connections for run in batch) for name, batch in runs.items()}
    client_us = {name: 1e6 * sum(r.client_cpu for r in batch) / sum(r.requests for r in batch)
                 for name, batch in runs.items()}
    print(f"connections opened: {connections} (one per request if the server answered `Connection: close`); load "
          f"generator CPU per request: {', '.join(f'{name} {us:.0f} us' for name, us in client_us.items())}")
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
