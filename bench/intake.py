"""Intake benchmark: POST /t2mobile/fulfilment against gunicorn with the production settings on
PostgreSQL and Redis, beside a bare DRF endpoint that does one INSERT, at a fixed concurrency.

    .venv/bin/python bench/intake.py [--concurrency 16] [--seconds 15] [--rounds 3]

Creates (and drops afterwards) the database `bench_intake`; uses Redis database 6 (flushed afterwards:
no worker runs, so every accepted order leaves a provisioning job there). ``BENCH_INTAKE_DB``,
``BENCH_INTAKE_REDIS_URL`` and ``BENCH_PORT`` move it, so that two runs on one machine do not meet.
The two endpoints are measured in alternating rounds (``--seconds`` each in all, split over
``--rounds``), so that a change of load on a shared machine falls on both alike.
Prints requests per second, p50 and p99 latency for both, the 1-minute load average, and their
ratio beside its goal (issue 14: at least 0.5).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PG, ROOT, admin_sql, goal_line, redis_flush, service_env  # noqa: E402
from scripts.procfile import process_argv  # noqa: E402

DB = os.environ.get("BENCH_INTAKE_DB", "bench_intake")
REDIS_URL = os.environ.get("BENCH_INTAKE_REDIS_URL", "redis://127.0.0.1:6379/6")
PORT = int(os.environ.get("BENCH_PORT", "8099"))
#: Issue 14: intake throughput at least half the bare endpoint's, on the same server config.
RATIO_GOAL = 0.5
API_KEY = "bench-key-" + "0123456789abcdef" * 2  # 32+ characters: the start-up check


def env() -> dict[str, str]:
    return service_env(
        database=DB,
        redis_url=REDIS_URL,
        DJANGO_SETTINGS_MODULE="bench.settings_bench",  # the production settings plus the bare endpoint
        T2MOBILE_RATE_LIMIT="10000000/m",
        T2MOBILE_API_KEYS=API_KEY,
        GUNICORN_BIND=f"127.0.0.1:{PORT}",
    )


def prepare() -> None:
    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env(), check=True)
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_bare (id bigserial PRIMARY KEY, body jsonb, created_at timestamptz DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO t2mobile_products (item_id, name, sku, description, rate, unit, zoho_status, is_published,"
            " published_set_by_staff, provisioner, created_at, updated_at)"
            " VALUES ('4815000000044208','Zoho Mail Lite','ZM-LITE','',1500,'','active',true,false,"
            "'zoho_sales_order',now(),now())"
        )
        conn.execute(
            "INSERT INTO t2mobile_product_plans (product_id, tenure, price, is_active, set_by_staff, created_at,"
            " updated_at) SELECT id, '12_MONTHS', 15000, true, false, now(), now() FROM t2mobile_products"
        )


def start_gunicorn() -> subprocess.Popen:
    proc = subprocess.Popen(
        process_argv("web", python=sys.executable),
        cwd=ROOT,
        env=env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
            conn.request("GET", "/t2mobile/health/live")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def order_body() -> tuple[bytes, dict[str, str]]:
    order_id = "B" + uuid.uuid4().hex[:20]
    body = json.dumps(
        {
            "orderId": order_id,
            "productId": "4815000000044208",
            "tenure": "12_MONTHS",
            "customerId": "C1",
            "customerName": "Ada Obi",
            "customerEmail": "ada@example.com",
            "customerPhone": "08031234567",
        }
    ).encode()
    return body, {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": order_id, "Content-Type": "application/json"}


def load(path: str, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.time() + seconds

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        mine = []
        while time.time() < stop_at:
            body, headers = order_body()
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 202
            except (OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
                ok = False
            mine.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "errors": errors[0], "elapsed": time.time() - began}


def summary(rounds: list[dict]) -> dict[str, float]:
    """Requests per second, p50 and p99 over the rounds of one endpoint."""
    latencies = sorted(latency for r in rounds for latency in r["latencies"])
    return {
        "requests": len(latencies),
        "errors": sum(r["errors"] for r in rounds),
        "rps": len(latencies) / sum(r["elapsed"] for r in rounds),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15, help="per endpoint, over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    prepare()
    proc = start_gunicorn()
    load_at_start = os.getloadavg()[0]
    try:
        load("/bench/bare", args.concurrency, 2)  # warm up
        load("/t2mobile/fulfilment", args.concurrency, 2)
        bare_rounds, intake_rounds = [], []
        for _ in range(args.rounds):
            bare_rounds.append(load("/bench/bare", args.concurrency, args.seconds / args.rounds))
            intake_rounds.append(load("/t2mobile/fulfilment", args.concurrency, args.seconds / args.rounds))
        bare, intake = summary(bare_rounds), summary(intake_rounds)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        redis_flush(env()["REDIS_URL"])
    load_at_end = os.getloadavg()[0]
    workers = env().get("WEB_CONCURRENCY", str(os.cpu_count() * 2 + 1))
    threads = env().get("GUNICORN_THREADS", "1")
    print(
        f"intake benchmark: gunicorn {workers} workers x {threads} threads, concurrency {args.concurrency}, "
        f"{args.seconds:.0f} s each in {args.rounds} alternating rounds, {os.cpu_count()} cores, "
        f"1-min load {load_at_start:.2f} -> {load_at_end:.2f}"
    )
    for name, r in (("bare INSERT", bare), ("POST /t2mobile/fulfilment", intake)):
        print(
            f"  {name:28s} {r['rps']:8.1f} req/s   p50 {r['p50_ms']:6.1f} ms   p99 {r['p99_ms']:6.1f} ms"
            f"   ({r['requests']} requests, {r['errors']} errors)"
        )
    print(goal_line("intake / bare throughput ratio (same run)", intake["rps"] / bare["rps"], RATIO_GOAL))


if __name__ == "__main__":
    main()
