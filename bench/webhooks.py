"""Webhook delivery benchmark: a real Celery worker process (default pool and concurrency, the
production settings) delivering to local receivers, on PostgreSQL and Redis.

    .venv/bin/python bench/webhooks.py [--events 2000] [--probe 200] [--backlog 10000] [--dead hang]
                                       [--no-dead]

0. Baseline, in the same run: A's bare receiver driven by a plain client (``requests.Session``
   keep-alive, one per thread, WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER threads) in a process of its own:
   requests per second and that client's CPU per request, what this machine gives at this moment
   without Celery, the database or signing.
1. Throughput: ``--events`` events for partner A are committed at once; deliveries per second from
   just before the commit (so the on-commit queueing counts) to the last arrival at A's receiver,
   and the worker process's CPU time per delivery (``/proc/<pid>/stat``, from before the commit
   until every delivery is recorded SENT), beside the goals of issue 14 (>= 300/s, <= 3 ms).
2. Baseline latency: ``--probe`` events for A; time from commit to arrival (p50, p95, max).
3. Dead endpoint, steady state: partner B's endpoint is known to be failing and has ``--backlog``
   due events; ``webhooks.deliver_due_webhooks`` runs every second (the beat runs it every minute).
   The same probe for A: the extra delay B's backlog adds.
4. Dead endpoint, cold: ``--backlog`` events for B are committed at once (one queued delivery each)
   while B's endpoint starts failing; then the probe for A.

``--dead hang`` makes B's endpoint accept connections and never answer (each attempt waits the 15 s
timeout); ``--dead 500`` answers 500 at once. Creates (and drops) the database ``bench_webhooks``;
starts a Redis server of its own on port 6391 (``BENCH_REDIS_PORT``) so that no other run can flush
or consume its queue. ``--no-dead`` stops after 2.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import django
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, admin_sql, service_env  # noqa: E402
from scripts.procfile import process_argv  # noqa: E402

DB = "bench_webhooks"
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6391"))
REDIS = f"redis://127.0.0.1:{REDIS_PORT}/0"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GOAL_PER_SECOND = 300  # issue 14
GOAL_CPU_MS = 3.0  # issue 14: worker CPU per delivery

# The baseline client: plain keep-alive sessions, one per thread, no signing, no database.
BASELINE_CLIENT = """
import json, os, sys, threading, time
import requests
url, total, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = json.dumps({"id": "evt_baseline", "type": "ORDER_FULFILLED", "data": {"orderId": "T2M0000000"}}).encode()
counter = iter(range(total))
lock = threading.Lock()

def lane():
    session = requests.Session()
    while True:
        with lock:
            i = next(counter, None)
        if i is None:
            return
        session.post(url, data=body, headers={"content-type": "application/json", "webhook-id": f"base_{i}"},
                     timeout=15).close()

workers = [threading.Thread(target=lane) for _ in range(threads)]
cpu, started = os.times(), time.monotonic()
for w in workers:
    w.start()
for w in workers:
    w.join()
elapsed, after = time.monotonic() - started, os.times()
cpu_ms = (after.user + after.system - cpu.user - cpu.system) * 1000 / total
print(json.dumps({"rate": total / elapsed, "cpu_ms": cpu_ms}))
"""

ENV = service_env(
    database=DB,
    redis_url=REDIS,
    WEBHOOK_ALLOW_PRIVATE_URLS="true",  # the receivers are on loopback
    LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "ERROR"),
)


class Receiver:
    """A local endpoint: ``ok`` answers 200 and notes the first arrival time of each event id;
    ``hang`` never answers; ``500`` answers 500 at once. Counts requests and the most in flight."""

    def __init__(self, mode: str) -> None:
        self.mode, self.arrivals, self.requests = mode, {}, 0
        self.in_flight = self.max_in_flight = 0
        self.lock, self.stop = threading.Lock(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else the body waits ~40 ms for the delayed ACK of the headers

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with outer.lock:
                    outer.requests += 1
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    outer.arrivals.setdefault(self.headers.get("webhook-id"), time.time())
                try:
                    if outer.mode == "hang":  # answer nothing; in flight until the client gives up
                        while not outer.stop.is_set():
                            readable, _, _ = select.select([self.connection], [], [], 0.2)
                            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                                break
                        return
                    status = 200 if outer.mode == "ok" else 500
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/t2mobile"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its descendants (all their threads), from /proc."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # a child that has just exited
    return total


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "p50": statistics.median(values),
        "p95": values[min(len(values) - 1, int(len(values) * 0.95))],
        "max": values[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--probe", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--dead", choices=["hang", "500"], default="hang")
    parser.add_argument("--no-dead", action="store_true", help="only the baseline and throughput (steps 0-2)")
    parser.add_argument(
        "--worker-args",
        default="-P threads -c 16",
        help="celery worker options; the default is the Procfile's webhooks worker",
    )
    args = parser.parse_args()

    os.environ.update(ENV)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the worker and drop the database
    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        if subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "ping"], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)

    sys.path.insert(0, str(ROOT))
    django.setup()
    from partners.models import Partner, WebhookSecret  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from webhooks.models import WebhookEndpointState, WebhookLog  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from webhooks.outbox import event_record  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from webhooks.tasks import deliver_due_webhooks  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)

    good, dead = Receiver("ok"), Receiver(args.dead)
    partner_a = Partner.objects.create(partner_id="BENCH_A", name="A", webhook_url=good.url)
    partner_b = Partner.objects.create(partner_id="BENCH_B", name="B", webhook_url=dead.url)
    for partner in (partner_a, partner_b):
        WebhookSecret.objects.create(partner=partner, secret=SECRET)

    (ROOT / ".run").mkdir(exist_ok=True)
    log = open(ROOT / ".run" / "bench_webhooks_worker.log", "w")  # noqa: SIM115
    # The Procfile's webhooks worker, also on the default queue, its pool and concurrency (and node
    # name) left to --worker-args, whose default is the Procfile's.
    worker = subprocess.Popen(
        process_argv(
            "webhooks",
            python=sys.executable,
            queues="webhooks,default",
            loglevel="WARNING",
            drop=("pool", "concurrency", "node_name"),
            extra=args.worker_args.split(),
        ),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def record(partner: Partner, count: int) -> tuple[list[str], float]:
        """Commit ``count`` events; the time just before the commit, so that the on-commit hooks
        (queueing the deliveries) are inside every figure measured from it."""
        with transaction.atomic():
            ids = [
                event_record(partner=partner, event_type="ORDER_FULFILLED", data={"orderId": f"T2M{i:07d}"}).event_id
                for i in range(count)
            ]
            committed = time.time()
        return ids, committed

    def wait_arrivals(ids: list[str], timeout: float = 600) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with good.lock:
                if all(i in good.arrivals for i in ids):
                    return max(good.arrivals[i] for i in ids)
            time.sleep(0.01)
        raise SystemExit(f"timed out: {sum(i in good.arrivals for i in ids)}/{len(ids)} arrived")

    def probe(label: str) -> dict[str, float]:
        ids, committed = record(partner_a, args.probe)
        wait_arrivals(ids)
        stats = percentiles([good.arrivals[i] - committed for i in ids])
        print(f"{label:<44} p50 {stats['p50']:.3f} s  p95 {stats['p95']:.3f} s  max {stats['max']:.3f} s")
        return stats

    try:
        warm, _ = record(partner_a, 20)
        wait_arrivals(warm, timeout=60)

        lanes = settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER
        print(f"start: {load()}, {os.cpu_count()} CPUs; worker: {args.worker_args or 'defaults'}")
        client = subprocess.run(
            [sys.executable, "-c", BASELINE_CLIENT, good.url, str(args.events), str(lanes)],
            capture_output=True,
            text=True,
            check=True,
        )
        base = json.loads(client.stdout)
        print(
            f"baseline: bare receiver, plain keep-alive client ({lanes} threads, no Celery, database or signing): "
            f"{base['rate']:.0f} requests/s, client CPU {base['cpu_ms']:.2f} ms per request ({load()})"
        )

        cpu_before = cpu_seconds(worker.pid)
        ids, committed = record(partner_a, args.events)
        last = wait_arrivals(ids)
        deadline = time.time() + 120
        while WebhookLog.objects.filter(event_id__in=ids, status=WebhookLog.Status.SENT).count() < len(ids):
            if time.time() > deadline:
                raise SystemExit("timed out waiting for the deliveries to be recorded SENT")
            time.sleep(0.05)
        recorded = time.time()
        cpu_ms = (cpu_seconds(worker.pid) - cpu_before) * 1000 / args.events
        rate = args.events / (last - committed)
        print(
            f"throughput: {args.events} events in {last - committed:.2f} s = {rate:.0f} deliveries/s "
            f"(all recorded SENT after {recorded - committed:.2f} s) ({load()})"
        )
        print(
            f"  goal >= {GOAL_PER_SECOND}/s: {verdict(rate >= GOAL_PER_SECOND)}; "
            f"{rate / base['rate']:.0%} of the baseline's rate"
        )
        print(
            f"worker CPU: {cpu_ms:.2f} ms per delivery (goal <= {GOAL_CPU_MS:g} ms: {verdict(cpu_ms <= GOAL_CPU_MS)}; "
            f"the baseline client: {base['cpu_ms']:.2f} ms per request)"
        )

        baseline = probe(f"baseline latency ({args.probe} events)")
        if args.no_dead:
            return

        # 3. steady state: B known failing, a backlog of due events, sweeps every second.
        now = timezone.now()
        WebhookLog.objects.bulk_create(
            WebhookLog(
                event_id=f"evt_backlog{i:08d}",
                partner=partner_b,
                event_type="ORDER_FULFILLED",
                payload={},
                body="{}",
                next_retry_at=now,
                retries=3,
            )
            for i in range(args.backlog)
        )
        WebhookEndpointState.objects.update_or_create(partner=partner_b, defaults={"consecutive_failures": 5})
        stop_sweeps = threading.Event()

        def sweeps() -> None:
            while not stop_sweeps.is_set():
                deliver_due_webhooks()
                stop_sweeps.wait(1.0)

        sweeper = threading.Thread(target=sweeps, daemon=True)
        sweeper.start()
        time.sleep(3)
        steady = probe(f"with {args.backlog} due events of a failing endpoint")
        stop_sweeps.set()
        sweeper.join()
        print(f"  dead endpoint: {dead.requests} requests, at most {dead.max_in_flight} in flight at once")

        # 4. cold: B's backlog committed at once while its endpoint starts failing.
        WebhookLog.objects.filter(partner=partner_b).delete()
        WebhookEndpointState.objects.filter(partner=partner_b).update(consecutive_failures=0, busy_until=None)
        dead.requests = dead.max_in_flight = 0
        record(partner_b, args.backlog)
        cold = probe(f"right after {args.backlog} new events to it (cold)")
        print(f"  dead endpoint: {dead.requests} requests, at most {dead.max_in_flight} in flight at once")

        for label, stats in (("steady", steady), ("cold", cold)):
            print(
                f"extra delay ({label}): p50 {stats['p50'] - baseline['p50']:+.3f} s, "
                f"p95 {stats['p95'] - baseline['p95']:+.3f} s, max {stats['max'] - baseline['max']:+.3f} s"
            )
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)
        good.close()
        dead.close()
        connections.close_all()
        admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        redis_server.terminate()
        redis_server.wait(10)


if __name__ == "__main__":
    main()
