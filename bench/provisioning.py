"""Provisioning benchmark: a burst of orders drained by real Celery workers through the shared Zoho
call budget, against the ZOHO SANDBOX (a local stand-in for Zoho, never the real one).

    .venv/bin/python bench/provisioning.py [--orders 400] [--scale 20] [--concurrency 16]
                                           [--modes per_customer,partner]

Time is scaled down by ``--scale``: Zoho's ~100 calls a minute becomes a sandbox limit of 100 calls
per ``60/scale`` seconds (sliding window, HTTP 429 beyond, at most 10 in flight), and our budget
``ZOHO_RATE_LIMIT`` is 90 per the same window with ``ZOHO_MAX_CONCURRENCY=5``. Two bursts of
``--orders`` orders are queued at once: first each from a new customer, then one more from each of
the same (returning) customers. For each burst it prints Zoho calls per order, the drain rate
(orders and calls per second, and calls as a share of the budget's limit) and the 429s the sandbox
answered. It does so for each ``ZOHO_CUSTOMER_MODE`` in ``--modes`` (a fresh database and sandbox
each), then prints, per mode, the calls per order and the orders a day that ``ZOHO_DAILY_LIMIT``
(10,000 by default) allows: Zoho's daily cap, not our CPU, is what caps the business.

Creates (and drops afterwards) the database ``bench_provisioning``; uses Redis database 7.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import django
from django.conf import settings
from django.db import connections
from django.db.models import Count, Q

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, admin_sql, free_port, redis_flush, service_env  # noqa: E402
from scripts.procfile import process_argv  # noqa: E402

DB = "bench_provisioning"
REDIS = "redis://127.0.0.1:6379/7"


def bench_env(*, sandbox_port: int, window: float) -> dict[str, str]:
    return service_env(
        database=DB,
        redis_url=REDIS,
        ZOHO_ACCOUNTS_URL=f"http://127.0.0.1:{sandbox_port}",
        ZOHO_API_BASE=f"http://127.0.0.1:{sandbox_port}/inventory/v1",
        ZOHO_CLIENT_ID="sandbox-client",
        ZOHO_CLIENT_SECRET="sandbox-secret",
        ZOHO_REFRESH_TOKEN="sandbox-refresh-token",
        ZOHO_ORGANIZATION_ID="sandbox-org",
        ZOHO_RATE_LIMIT=f"90/{window:g}s",
        ZOHO_MAX_CONCURRENCY="5",
    )


def bench_mode(*, mode: str, args, window: float) -> dict[str, float]:
    """One mode: a fresh database, sandbox and worker; both bursts. Calls per order of each burst."""
    port = free_port()
    env = bench_env(sandbox_port=port, window=window)
    env["ZOHO_CUSTOMER_MODE"] = mode
    os.environ.update(env)

    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    django.setup()

    from catalogue.services import catalogue_sync  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from integrations.zoho.sandbox import ZohoSandbox  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from integrations.zoho.sandbox_state import DEMO_ITEMS  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from orders.api import fulfilment_answer  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from orders.models import Order  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from partners.services import partner_sync_from_settings  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)

    # django.setup() runs once per process: point this process's settings at this mode's sandbox.
    settings.ZOHO_ACCOUNTS_URL, settings.ZOHO_API_BASE = env["ZOHO_ACCOUNTS_URL"], env["ZOHO_API_BASE"]
    settings.ZOHO_CUSTOMER_MODE = mode
    redis_flush(REDIS)
    sandbox = ZohoSandbox(port=port, rate_limit=100, window=window, max_inflight=10).start()
    worker = None
    per_order: dict[str, float] = {}
    try:
        partner = partner_sync_from_settings()
        catalogue_sync()
        # The Procfile's provisioning worker, with this run's concurrency and Celery's default node name.
        worker = subprocess.Popen(
            process_argv(
                "worker",
                python=sys.executable,
                concurrency=args.concurrency,
                loglevel="WARNING",
                drop=("node_name",),
                extra=("--without-gossip", "--without-mingle"),
            ),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        from t2mobile_portal.celery import app  # noqa: PLC0415 (the Celery app autodiscovers the apps' tasks on import, so after django.setup())

        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=1.0):
            if time.monotonic() > deadline:
                raise SystemExit("the Celery worker did not start")

        print(
            f"\n=== ZOHO_CUSTOMER_MODE={mode} ===\n"
            f"ZOHO SANDBOX limit 100 calls / {window:g} s (= 100/min scaled x{args.scale:g}), 10 in flight; "
            f"budget ZOHO_RATE_LIMIT=90/{window:g}s, ZOHO_MAX_CONCURRENCY=5; "
            f"{args.concurrency} worker processes"
        )
        budget_per_second = 90 / window
        for label, prefix in (("new customers", "N"), ("returning customers", "R")):
            before = dict(sandbox.state.counts)
            started = time.monotonic()
            for i in range(args.orders):
                result = fulfilment_answer(
                    partner=partner,
                    idempotency_key=f"bench-{mode}-{prefix}-{i}",
                    payload={
                        "orderId": f"BENCH-{prefix}-{i:05d}",
                        "productId": DEMO_ITEMS[0]["item_id"],  # Zoho Mail Lite
                        "tenure": "12_MONTHS",
                        "quantity": 1,
                        "customerId": f"CUST-{i:05d}",
                        "customerName": f"Customer {i}",
                        "customerEmail": f"customer{i}@example.com",
                        "customerPhone": "+2348031234567",
                        "type": "NEW",
                        "renewalOf": None,
                        "metadata": {},
                    },
                )
                assert result.status_code == 202, result.body
            queued = time.monotonic()
            phase = Order.objects.filter(order_id__startswith=f"BENCH-{prefix}-")
            while True:
                counts = phase.aggregate(
                    done=Count("pk", filter=Q(status__in=["FULFILLED", "FAILED"])),
                    failed=Count("pk", filter=Q(status="FAILED")),
                )
                if counts["done"] >= args.orders:
                    break
                time.sleep(0.25)
            finished = time.monotonic()
            after = dict(sandbox.state.counts)
            calls = after.get("api", 0) - before.get("api", 0)
            tokens = after.get("token", 0) - before.get("token", 0)
            throttled = after.get("throttled", 0) - before.get("throttled", 0)
            elapsed = finished - started
            per_order[label] = calls / args.orders
            print(
                f"\n{label}: {args.orders} orders queued in {queued - started:.1f} s, all settled after "
                f"{elapsed:.1f} s ({counts['failed']} failed)"
            )
            print(f"  Zoho API calls per order: {calls / args.orders:.2f} ({calls} calls, {tokens} token requests)")
            print(
                f"  drain: {args.orders / elapsed:.1f} orders/s, {calls / elapsed:.1f} calls/s = "
                f"{calls / elapsed / budget_per_second:.0%} of the budget's limit ({budget_per_second:g}/s)"
            )
            print(f"  HTTP 429 answered by the sandbox: {throttled}")
        print(
            f"\nsales orders in the sandbox: {len(sandbox.state.salesorders)} for {2 * args.orders} orders; "
            f"contacts: {len(sandbox.state.contacts)}"
        )
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        sandbox.stop()

        connections.close_all()
        admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    return per_order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400, help="orders per burst")
    parser.add_argument("--scale", type=float, default=20.0, help="time scale: a Zoho minute lasts 60/scale s")
    parser.add_argument("--concurrency", type=int, default=16, help="Celery worker processes")
    parser.add_argument("--modes", default="per_customer,partner", help="ZOHO_CUSTOMER_MODE values, comma-separated")
    args = parser.parse_args()
    window = 60.0 / args.scale
    daily_limit = int(os.environ.get("ZOHO_DAILY_LIMIT", "10000"))
    results = {mode: bench_mode(mode=mode, args=args, window=window) for mode in args.modes.split(",") if mode}

    print(f"\n=== Orders a day under the daily cap (ZOHO_DAILY_LIMIT={daily_limit:,} calls) ===")
    print(f"{'mode':<14}{'customers':<22}{'calls/order':>12}{'orders/day':>12}")
    for mode, per_order in results.items():
        for label, calls in per_order.items():
            orders_per_day = int(daily_limit // calls) if calls else 0
            print(f"{mode:<14}{label:<22}{calls:>12.2f}{orders_per_day:>12,}")


if __name__ == "__main__":
    main()
