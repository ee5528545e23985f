"""End-to-end benchmark: from POST /t2mobile/fulfilment to the verified ORDER_FULFILLED webhook,
with a zero-latency Zoho stand-in (the ZOHO SANDBOX, never the real Zoho, with no rate limit).

    .venv/bin/python bench/end_to_end.py [--orders 200] [--rate 10] [--burst 300] [--wait 120] [--worker-args "-c 4"]

Starts, as separate processes with the production settings on PostgreSQL and Redis: gunicorn
(``gunicorn.conf.py``), the two Celery workers of the Procfile (``-Q provisioning,default`` with the
default pool and concurrency, ``--worker-args`` adds options to it; ``-Q webhooks -P threads
-c 16``) and ``manage.py zoho_sandbox`` with no
rate limit and no cap on calls in flight (our own Zoho budget is opened up likewise, so that Zoho
costs nothing here). In this process a webhook receiver verifies every delivery with the
``standardwebhooks`` library and notes when each order's ORDER_FULFILLED arrived.

A few warm-up orders go first (they also prove that the worker runs); then ``--orders`` orders are
POSTed at a steady ``--rate`` per second, each by a new customer. It prints, per order, the time from
just before its POST was sent to the arrival of its verified ORDER_FULFILLED (p50, p95, p99, max),
how many arrived within ``--wait`` seconds after the last POST, the POST answer times, where the time
went (from the rows' timestamps: waiting for a worker, provisioning, outbox to delivery attempt,
delivery), and the sandbox's Zoho calls per order and 429s (none expected); then issue 14's p99 goal
(≤ 150 ms) through ``goal_line`` beside its baseline, the same pipeline with one order alone on it (the
last warm-up orders, each waited for).

Then ``--burst`` orders (300) are POSTed at once over HTTP from 32 client threads, and it prints
fulfilled-and-announced per second from the first POST to the last verified ORDER_FULFILLED beside
its goal (≥ 50/s) and its baseline, the intake rate of the same burst (202s per second): the pipeline
cannot finish faster than orders come in, so where the intake rate is below the goal, HTTP intake
(gunicorn and ``orders/intake.py``), not provisioning, is what holds the figure.

Creates (and drops afterwards) the database ``bench_e2e_<pid>``; uses Redis database 13, or
``BENCH_E2E_REDIS``, refused when it holds keys (another run's), flushed after. Every process it
starts is stopped on exit, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import http.client
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PG, ROOT, admin_sql, free_port, goal_line, redis_flush, service_env  # noqa: E402
from integrations.zoho.sandbox_state import DEMO_ITEMS  # noqa: E402
from scripts.procfile import process_argv  # noqa: E402

RUN_DIR = ROOT / ".run"
# Per run: two runs at once (other worktrees) must not drop each other's database.
DB = f"bench_e2e_{os.getpid()}"
#: Shared by every run that does not set BENCH_E2E_REDIS: runs at once on one Redis db consume each
#: other's jobs (and flush them), so the run refuses a db that already holds keys.
REDIS = os.environ.get("BENCH_E2E_REDIS", "redis://127.0.0.1:6379/13")
API_KEY = "bench-e2e-key-" + "0123456789abcdef" * 2  # 32+ characters: the start-up check
PRODUCT_ID = DEMO_ITEMS[0]["item_id"]  # Zoho Mail Lite, first of the sandbox's demo catalogue
WARM_UP_ORDERS = 3
#: Issue 14's goals for this benchmark.
GOAL_P99_MS = 150.0
GOAL_BURST_PER_SECOND = 50.0


def bench_env(*, web_port: int, sandbox_port: int, receiver_url: str, secret: str) -> dict[str, str]:
    return service_env(
        database=DB,
        redis_url=REDIS,
        GUNICORN_BIND=f"127.0.0.1:{web_port}",
        T2MOBILE_API_KEYS=API_KEY,
        T2MOBILE_RATE_LIMIT="10000000/m",
        T2MOBILE_WEBHOOK_URL=receiver_url,
        T2MOBILE_WEBHOOK_SECRET=secret,
        WEBHOOK_ALLOW_PRIVATE_URLS="true",  # the receiver is on loopback
        ZOHO_ACCOUNTS_URL=f"http://127.0.0.1:{sandbox_port}",
        ZOHO_API_BASE=f"http://127.0.0.1:{sandbox_port}/inventory/v1",
        ZOHO_CLIENT_ID="sandbox-client",
        ZOHO_CLIENT_SECRET="sandbox-secret",
        ZOHO_REFRESH_TOKEN="sandbox-refresh-token",
        ZOHO_ORGANIZATION_ID="sandbox-org",
        # Zero-cost Zoho: neither the sandbox nor our budget holds a call back.
        ZOHO_RATE_LIMIT="1000000/s",
        ZOHO_MAX_CONCURRENCY="1000",
        ZOHO_DAILY_LIMIT="1000000000",
    )


try:  # looked up here, not in the forked child, where only the call itself is safe
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child: receive SIGTERM if the benchmark dies without cleaning up (e.g. SIGKILL)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Processes:
    """The processes this run started, each in its own session; ``stop_all`` ends them all."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(RUN_DIR / f"bench_e2e_{name}.log", "w")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.running.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.running:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}; see .run/bench_e2e_{name}.log")

    def stop_all(self) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in self.running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Receiver:
    """T2Mobile's side: verifies each delivery with ``standardwebhooks`` (400 when it fails) and notes
    the first arrival of each order's verified event, by type."""

    def __init__(self, secret: str) -> None:
        verifier = Webhook(secret)
        self.arrivals: dict[str, dict[str, float]] = {"ORDER_FULFILLED": {}, "ORDER_FAILED": {}}
        self.rejected = self.duplicates = self.other = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # a body after the headers must not wait for a delayed ACK

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    event = verifier.verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    received = None
                else:
                    received = time.time()
                with outer.lock:
                    if received is None:
                        outer.rejected += 1
                    elif event.get("type") in outer.arrivals:
                        seen = outer.arrivals[event["type"]]
                        order_id = (event.get("data") or {}).get("orderId")
                        if order_id in seen:
                            outer.duplicates += 1
                        else:
                            seen[order_id] = received
                    else:
                        outer.other += 1
                status = 400 if received is None else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/t2mobile"
        threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True).start()

    def fulfilled(self, order_ids: list[str]) -> int:
        with self.lock:
            return sum(order_id in self.arrivals["ORDER_FULFILLED"] for order_id in order_ids)

    def failed(self, order_ids: list[str]) -> int:
        with self.lock:
            return sum(order_id in self.arrivals["ORDER_FAILED"] for order_id in order_ids)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_http(port: int, path: str, seconds: float, procs: Processes) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        procs.check()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"nothing answered GET {path} on port {port} within {seconds:g} s")


class Poster:
    """POSTs orders from a small thread pool (open loop: a slow answer does not delay the next POST)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()
        self.sent: dict[str, float] = {}
        self.answer_seconds: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def post(self, order_id: str, customer: int) -> None:
        body = json.dumps(
            {
                "orderId": order_id,
                "productId": PRODUCT_ID,
                "tenure": "12_MONTHS",
                "quantity": 1,
                "customerId": f"E2E-CUST-{customer:06d}",
                "customerName": f"Customer {customer}",
                "customerEmail": f"e2e-customer{customer}@example.com",
                "customerPhone": "+2348031234567",
                "type": "NEW",
            }
        ).encode()
        headers = {
            "Authorization": f"Bearer {API_KEY}",
            "Idempotency-Key": order_id,
            "Content-Type": "application/json",
        }
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = time.time()
        try:
            conn.request("POST", "/t2mobile/fulfilment", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            error = None if response.status == 202 else f"{order_id}: HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            self.local.conn = None
            error = f"{order_id}: {exc!r}"
        answered = time.time()
        with self.lock:
            self.sent[order_id] = sent
            self.answer_seconds.append(answered - sent)
            if error:
                self.errors.append(error)


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def ms(sorted_values: list[float], share: float) -> str:
    return f"{percentile(sorted_values, share) * 1000:.0f} ms"


def wait_for(receiver: Receiver, order_ids: list[str], seconds: float, procs: Processes) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if receiver.fulfilled(order_ids) + receiver.failed(order_ids) >= len(order_ids):
            return
        procs.check()
        time.sleep(0.05)


def sandbox_calls(port: int) -> dict[str, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/sandbox/state")
    return json.loads(conn.getresponse().read())["calls"]


PHASES_SQL = """
SELECT extract(epoch FROM f.last_attempt_at - o.created_at), extract(epoch FROM w.created_at - f.last_attempt_at),
       extract(epoch FROM a.attempted_at - w.created_at), extract(epoch FROM w.sent_at - a.attempted_at)
FROM t2mobile_orders o
JOIN t2mobile_fulfilments f ON f.order_id = o.id
JOIN t2mobile_webhook_logs w ON w.order_id = o.id AND w.event_type = 'ORDER_FULFILLED'
JOIN t2mobile_webhook_attempts a ON a.log_id = w.id AND a.status_code = 200
WHERE o.order_id = ANY(%s)
"""
PHASES = ("waiting for a worker", "provisioning", "outbox → delivery attempt", "delivery")


MISSING_SQL = """
SELECT o.order_id, o.status, f.status, f.attempts, f.next_attempt_at, f.last_error, w.event_type, w.status, w.retries,
       w.next_retry_at, w.created_at, (SELECT count(*) FROM t2mobile_webhook_attempts a WHERE a.log_id = w.id)
FROM t2mobile_orders o
JOIN t2mobile_fulfilments f ON f.order_id = o.id
LEFT JOIN t2mobile_webhook_logs w ON w.order_id = o.id
WHERE o.order_id = ANY(%s)
ORDER BY o.order_id
"""


def missing(order_ids: list[str]) -> str:
    """Where the orders whose ORDER_FULFILLED did not arrive stand (the first five), from the rows."""
    with psycopg.connect(f"{PG}/{DB}") as conn:
        rows = conn.execute(MISSING_SQL, [order_ids[:5]]).fetchall()
    return "; ".join(
        f"{oid}: order {status}, fulfilment {f_status} attempts={attempts} next={next_at} error={error[:80]!r}, "
        f"event {etype} {e_status} retries={retries} next_retry={next_retry} created={created} attempts={sent}"
        for oid, status, f_status, attempts, next_at, error, etype, e_status, retries, next_retry, created, sent in rows
    )


def phases(order_ids: list[str]) -> str:
    """Where the time went, from the rows' own timestamps (same clock: one machine)."""
    with psycopg.connect(f"{PG}/{DB}") as conn:
        rows = conn.execute(PHASES_SQL, [order_ids]).fetchall()
    if not rows:
        return "no rows"
    parts = []
    for name, values in zip(PHASES, zip(*rows, strict=True), strict=True):
        values = sorted(float(v) for v in values)
        parts.append(f"{name} {ms(values, 0.5)} / {ms(values, 0.99)}")
    return ", ".join(parts)


def burst(*, receiver: Receiver, web_port: int, count: int, wait: float, procs: Processes) -> None:
    """``count`` orders POSTed at once over HTTP (32 connections, as fast as gunicorn answers), then
    fulfilled-and-announced per second from the first POST to the last verified ORDER_FULFILLED;
    beside it, the intake rate (202s per second) as the baseline: the pipeline cannot beat it."""
    poster = Poster(web_port)
    order_ids = [f"E2E-BURST-{i:06d}" for i in range(count)]
    began = time.time()
    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="burst") as pool:
        for i, order_id in enumerate(order_ids):
            pool.submit(poster.post, order_id, 500_000 + i)
    posted = time.time()
    wait_for(receiver, order_ids, wait, procs)
    with receiver.lock:
        arrivals = [
            receiver.arrivals["ORDER_FULFILLED"][o] for o in order_ids if o in receiver.arrivals["ORDER_FULFILLED"]
        ]
    first_post = min(poster.sent.values())
    intake_rate = count / max(1e-9, posted - began)
    print(
        f"burst: {count} orders POSTed at once over HTTP (32 client threads): all answered in "
        f"{posted - began:.2f} s ({len(poster.errors)} errors), baseline intake {intake_rate:.1f} orders/s"
    )
    if len(arrivals) < count:
        print(f"  verified ORDER_FULFILLED received: {len(arrivals)}/{count} within {wait:g} s")
        with receiver.lock:
            lost = [o for o in order_ids if o not in receiver.arrivals["ORDER_FULFILLED"]]
        print(f"  not announced: {missing(lost)}")
    rate = len(arrivals) / max(1e-9, max(arrivals) - first_post) if arrivals else 0.0
    print(f"  first POST → last verified ORDER_FULFILLED: {max(arrivals) - first_post:.2f} s" if arrivals else "")
    if arrivals:
        print(f"  phases (p50 / p99): {phases(order_ids)}")
    print(goal_line("burst: fulfilled and announced per second", rate, GOAL_BURST_PER_SECOND, unit="/s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200, help="orders to POST")
    parser.add_argument("--rate", type=float, default=10.0, help="orders per second, evenly spaced")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for webhooks after the last POST")
    parser.add_argument("--burst", type=int, default=300, help="orders POSTed at once after the steady run (0: none)")
    parser.add_argument("--worker-args", default="", help='extra celery worker options, e.g. "-P threads -c 8"')
    args = parser.parse_args()

    RUN_DIR.mkdir(exist_ok=True)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    receiver = Receiver(secret)
    web_port, sandbox_port = free_port(), free_port()
    env = bench_env(web_port=web_port, sandbox_port=sandbox_port, receiver_url=receiver.url, secret=secret)
    procs = Processes(env)
    broker = redis.Redis.from_url(REDIS)
    # Ctrl-C (even when started where SIGINT is ignored), SIGTERM and SIGHUP all unwind through the
    # finally block below, which stops everything.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, _frame: sys.exit(128 + signum))
    if broker.dbsize():
        raise SystemExit(f"{REDIS} holds keys: another run may be using it; set BENCH_E2E_REDIS to a free db")
    try:
        redis_flush(REDIS)
        admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin_sql(f"CREATE DATABASE {DB}")
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        procs.start(
            "sandbox",
            py,
            "manage.py",
            "zoho_sandbox",
            "--port",
            str(sandbox_port),
            "--rate-limit",
            "1000000000",
            "--max-inflight",
            "1000000",
        )
        wait_http(sandbox_port, "/sandbox/state", 30, procs)
        subprocess.run(
            [py, "manage.py", "sync_zoho_catalogue"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
        # The two workers of the Procfile: provisioning (+ default) and webhooks on a threads pool.
        quiet = ("--without-gossip", "--without-mingle")
        worker = procs.start(
            "worker",
            *process_argv("worker", python=py, loglevel="WARNING", extra=(*quiet, *args.worker_args.split())),
        )
        procs.start("webhooks", *process_argv("webhooks", python=py, loglevel="WARNING", extra=quiet))
        procs.start("web", *process_argv("web", python=py))
        wait_http(web_port, "/t2mobile/health/live", 30, procs)

        poster = Poster(web_port)
        warm = [f"E2E-WARM-{i}" for i in range(WARM_UP_ORDERS)]
        for i, order_id in enumerate(warm):
            # One at a time on an idle pipeline: the last ones are the bare pipeline cost (baseline).
            poster.post(order_id, 900_000 + i)
            if poster.errors:
                raise SystemExit(f"warm-up POST failed: {poster.errors[0]}")
            wait_for(receiver, [order_id], 90, procs)
            if receiver.fulfilled([order_id]) < 1:
                raise SystemExit("warm-up orders were not fulfilled within 90 s; see .run/bench_e2e_worker.log")
        with receiver.lock:
            bare = sorted(receiver.arrivals["ORDER_FULFILLED"][o] - poster.sent[o] for o in warm[1:])
        poster = Poster(web_port)
        calls_before = sandbox_calls(sandbox_port)

        order_ids = [f"E2E-{i:06d}" for i in range(args.orders)]
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="post") as pool:
            for i, order_id in enumerate(order_ids):
                time.sleep(max(0.0, began + i / args.rate - time.monotonic()))
                pool.submit(poster.post, order_id, i)
        posting_seconds = time.monotonic() - began
        wait_for(receiver, order_ids, args.wait, procs)
        calls_after = sandbox_calls(sandbox_port)

        with receiver.lock:
            fulfilled = {
                o: receiver.arrivals["ORDER_FULFILLED"][o]
                for o in order_ids
                if o in receiver.arrivals["ORDER_FULFILLED"]
            }
            failed = sum(o in receiver.arrivals["ORDER_FAILED"] for o in order_ids)
        latencies = sorted(fulfilled[o] - poster.sent[o] for o in fulfilled)
        answers = sorted(poster.answer_seconds)
        api_calls = calls_after.get("api", 0) - calls_before.get("api", 0)
        throttled = calls_after.get("throttled", 0) - calls_before.get("throttled", 0)
        workers = env.get("WEB_CONCURRENCY", str((os.cpu_count() or 1) * 2 + 1))

        print(
            f"end-to-end benchmark: {args.orders} orders at {args.rate:g}/s (posted in {posting_seconds:.1f} s); "
            f"gunicorn {workers} workers; Celery workers as in the Procfile: -Q provisioning,default "
            f"({args.worker_args or 'default pool and concurrency'}) and -Q webhooks -P threads -c 16; "
            "ZOHO SANDBOX without limits; "
            f"{os.cpu_count()} cores"
        )
        print(
            f"  POST answers: {len(answers) - len(poster.errors)} × 202, {len(poster.errors)} errors; "
            f"p50 {ms(answers, 0.5)}  p99 {ms(answers, 0.99)}"
        )
        print(
            f"  verified ORDER_FULFILLED received: {len(fulfilled)}/{args.orders} "
            f"(ORDER_FAILED {failed}, bad signatures {receiver.rejected}, duplicates {receiver.duplicates}; "
            f"waited up to {args.wait:g} s after the last POST)"
        )
        if latencies:
            print(
                f"  POST sent → verified webhook received: p50 {ms(latencies, 0.5)}  "
                f"p95 {ms(latencies, 0.95)}  p99 {ms(latencies, 0.99)}  "
                f"max {latencies[-1] * 1000:.0f} ms"
            )
            print(f"  phases (p50 / p99): {phases(list(fulfilled))}")
        lost = [o for o in order_ids if o not in fulfilled and o not in receiver.arrivals["ORDER_FAILED"]]
        if lost:
            print(f"  not announced: {missing(lost)}")
        print(f"  Zoho sandbox: {api_calls / max(1, args.orders):.2f} API calls per order, {throttled} × 429")
        for error in poster.errors[:5]:
            print(f"  error: {error}")
        if latencies:
            print(f"  baseline, one order alone on an idle pipeline (warm-up): {bare[-1] * 1000:.0f} ms")
            print(
                goal_line(
                    "p99 accept → verified ORDER_FULFILLED",
                    percentile(latencies, 0.99) * 1000,
                    GOAL_P99_MS,
                    unit=" ms",
                    higher_is_better=False,
                )
            )
        if args.burst:
            burst(receiver=receiver, web_port=web_port, count=args.burst, wait=args.wait, procs=procs)
        if worker.poll() is not None:
            print(f"  the worker exited with {worker.returncode}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        procs.stop_all()
        receiver.close()
        try:
            redis_flush(REDIS)
        except redis.RedisError:
            pass
        admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
