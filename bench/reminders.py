"""Expiry-reminder benchmark: the nightly scan over 1,000,000 ACTIVE subscriptions.

    .venv/bin/python bench/reminders.py [--rows 1000000] [--days-spread 730] [--keep]

Creates the database `bench_reminders` (dropped afterwards unless ``--keep``), migrates it, bulk
inserts the subscriptions server-side (``INSERT … SELECT generate_series``: one NEW order, its
fulfilment and the subscription it opened, each order pointing at its subscription) with expiry
dates spread evenly over ``--days-spread`` days from a month ago, then runs
``expiry_reminders_send`` with the production settings (``REMINDER_DAYS=7,1``) in a fresh process,
twice: the first run sends every reminder due, the second finds them all sent. For each run it
prints wall time, the process's peak memory (``ru_maxrss``, which includes Django itself), the peak
Python allocation during the run (tracemalloc, in a separate run because tracing slows Python down)
and the SQL statements issued, and it prints PostgreSQL's plan of one batch query to show that the
scan walks the ``(status, expires_at)`` index of ``t2mobile_subscriptions`` over the rows due, not
the table. Uses Redis database 7 as the broker (each event queues one delivery job, as in
production) and flushes it afterwards.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import django
import psycopg
import redis
from django.db import connection, transaction

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PG, ROOT, admin_sql, redis_flush, service_env  # noqa: E402

DB = "bench_reminders"
REDIS = "redis://127.0.0.1:6379/7"
GOAL_SECONDS = 60
GOAL_MB = 200


def env() -> dict[str, str]:
    return service_env(database=DB, redis_url=REDIS, REMINDER_DAYS="7,1")


# Values for the columns of the three tables; any other NOT NULL column without a database default
# (added by a later migration) gets a neutral value of its type, so the bench keeps working.
ORDER_COLUMNS = {
    "partner_id": "%(partner)s",
    "order_id": "'BENCH-' || i",
    "type": "'NEW'",
    "customer_id": "'CUST-' || i",
    "customer_name": "'Bench Customer'",
    "customer_email": "'bench' || i || '@example.com'",
    "customer_phone": "'+2348031234567'",
    "product_id": "'4815000000044208'",
    "tenure": "'12_MONTHS'",
    "quantity": "1",
    "unit_price": "15000.00",
    "currency": "'NGN'",
    "metadata": "'{}'::jsonb",
    "status": "'FULFILLED'",
    "failure_reason": "''",
    "zoho_sales_order_id": "'SO-' || i",
    "activation_reference": "'LIC-' || i",
    "idempotency_key": "'bench-' || i",
    # The id of the order's subscription, drawn here so that no UPDATE of a million orders follows
    # (the foreign key is checked at the commit of the three inserts).
    "subscription_id": "nextval(pg_get_serial_sequence('t2mobile_subscriptions', 'id'))",
    "created_at": "now()",
    "updated_at": "now()",
}
FULFILMENT_COLUMNS = {
    "order_id": "o.id",
    "activation_reference": "o.activation_reference",
    "sales_order_id": "o.zoho_sales_order_id",
    "status": "'ACTIVE'",
    "starts_at": "now() - interval '30 days' + (o.id - %(first)s) * %(step)s * interval '1 second' - interval '1 year'",
    "expires_at": "now() - interval '30 days' + (o.id - %(first)s) * %(step)s * interval '1 second'",
    "attempts": "1",
    "last_error": "''",
    "created_at": "now()",
    "updated_at": "now()",
}
SUBSCRIPTION_COLUMNS = {
    "id": "o.subscription_id",
    "partner_id": "o.partner_id",
    "customer_id": "o.customer_id",
    "product_id": "o.product_id",
    "activation_reference": "f.activation_reference",
    "origin_order_id": "o.id",
    "status": "'ACTIVE'",
    "starts_at": "f.starts_at",
    "expires_at": "f.expires_at",
    "created_at": "now()",
    "updated_at": "now()",
}
NEUTRAL = {
    "boolean": "false",
    "jsonb": "'{}'::jsonb",
    "integer": "0",
    "bigint": "0",
    "smallint": "0",
    "numeric": "0",
    "timestamp with time zone": "now()",
    "date": "current_date",
}


def _columns(conn, table: str, known: dict[str, str]) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'",
        [table],
    ).fetchall()
    columns = dict(known)
    for name, data_type in rows:
        if name not in columns and name != "id":
            columns[name] = NEUTRAL.get(data_type, "''")
    return columns


def prepare(rows: int, days_spread: int) -> float:
    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env(), check=True)
    started = time.perf_counter()
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        partner = conn.execute(
            "INSERT INTO t2mobile_partners (partner_id, name, webhook_url, webhook_scheme, rate_limit, "
            "deliveries_paused, created_at, updated_at) VALUES ('BENCH001', 'Bench', 'https://example.com/hook', "
            "'standard-webhooks-v1', '', false, now(), now()) RETURNING id"
        ).fetchone()[0]
        orders = _columns(conn, "t2mobile_orders", ORDER_COLUMNS)
        fulfilments = _columns(conn, "t2mobile_fulfilments", FULFILMENT_COLUMNS)
        subscriptions = _columns(conn, "t2mobile_subscriptions", SUBSCRIPTION_COLUMNS)
        with conn.transaction():
            conn.execute(
                f"INSERT INTO t2mobile_orders ({', '.join(orders)}) "
                f"SELECT {', '.join(orders.values())} FROM generate_series(1, %(rows)s) AS i",
                {"partner": partner, "rows": rows},
            )
            first = conn.execute("SELECT min(id) FROM t2mobile_orders").fetchone()[0]
            conn.execute(
                f"INSERT INTO t2mobile_fulfilments ({', '.join(fulfilments)}) "
                f"SELECT {', '.join(fulfilments.values())} FROM t2mobile_orders o",
                {"first": first, "step": days_spread * 86400 / rows},
            )
            conn.execute(
                f"INSERT INTO t2mobile_subscriptions ({', '.join(subscriptions)}) "
                f"SELECT {', '.join(subscriptions.values())} "
                "FROM t2mobile_orders o JOIN t2mobile_fulfilments f ON f.order_id = o.id"
            )
        for table in ("t2mobile_orders", "t2mobile_fulfilments", "t2mobile_subscriptions"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def scan(trace: bool) -> None:
    """One run of the reminder service in this (fresh) process; prints a JSON line."""
    django.setup()

    from orders.models import Subscription  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)
    from orders.subscriptions import expiry_reminders_send  # noqa: PLC0415 (app models need django.setup(), called above once the env is set)

    statements = {"count": 0, "batch_sql": None}

    def count(execute, sql, params, many, context):
        statements["count"] += 1
        if statements["batch_sql"] is None and "SKIP LOCKED" in sql:
            statements["batch_sql"] = (sql, params)
        return execute(sql, params, many, context)

    rows = Subscription.objects.count()
    if trace:
        tracemalloc.start()
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        run = expiry_reminders_send()
        seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    plan = []
    if statements["batch_sql"] and not trace:
        sql, params = statements["batch_sql"]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = [line for (line,) in cursor.fetchall()]
            transaction.set_rollback(True)
    print(
        json.dumps(
            {
                "rows": rows,
                "due": run.scanned,
                "sent": run.sent,
                "already_sent": run.already_sent,
                "batches": run.batches,
                "seconds": round(seconds, 2),
                "queries": statements["count"],
                "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "traced_peak_mb": round(traced_peak / 2**20, 1) if traced_peak is not None else None,
                "plan": plan,
            }
        )
    )


def run_scan(trace: bool = False) -> dict:
    args = [sys.executable, __file__, "--scan"] + (["--trace"] if trace else [])
    out = subprocess.run(args, cwd=ROOT, env=env(), check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def reminders_reset() -> None:
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("DELETE FROM t2mobile_webhook_logs")
        conn.execute("VACUUM ANALYZE t2mobile_webhook_logs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days-spread", type=int, default=730)
    parser.add_argument("--keep", action="store_true", help="leave the database for a look afterwards")
    parser.add_argument("--scan", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scan:
        scan(args.trace)
        return

    broker = redis.Redis.from_url(REDIS)
    try:
        seed_seconds = prepare(args.rows, args.days_spread)
        print(f"seeded {args.rows:,} ACTIVE subscriptions over {args.days_spread} days in {seed_seconds:.1f} s")
        first = run_scan()
        broker.flushdb()
        second = run_scan()
        reminders_reset()
        broker.flushdb()
        traced = run_scan(trace=True)
        for label, result in (("first run (sends)", first), ("second run (all sent)", second)):
            print(
                f"{label}: {result['due']:,} due of {result['rows']:,}, {result['sent']:,} sent, "
                f"{result['already_sent']:,} already sent, {result['batches']} batches, "
                f"{result['seconds']} s, {result['queries']:,} queries, peak RSS {result['maxrss_mb']} MB"
            )
        print(f"first run under tracemalloc: peak Python allocation {traced['traced_peak_mb']} MB")
        print("plan of one batch query (EXPLAIN ANALYZE):")
        for line in first["plan"]:
            print("   ", line)
        ok = first["seconds"] <= GOAL_SECONDS and first["maxrss_mb"] <= GOAL_MB
        print(f"goal ≤ {GOAL_SECONDS} s and ≤ {GOAL_MB} MB: {'met' if ok else 'NOT met'}")
    finally:
        redis_flush(REDIS)
        broker.close()
        if not args.keep:
            admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
