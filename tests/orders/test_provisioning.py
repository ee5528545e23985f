# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""Provisioning against the Zoho sandbox with a real Celery worker, real PostgreSQL and Redis:
every accepted order ends FULFILLED or FAILED, with exactly one Zoho sales order."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection
from django.utils import timezone

from orders import provisioning
from orders.models import Fulfilment, Order
from orders.provisioning import DEAD_ATTEMPT_SETTLE
from orders.queueing import SWEEP_GRACE
from orders.run_lock import provisioning_lock_key as _lock_key
from orders.sweeper import orders_redrive_stalled
from orders.tasks import provision_order
from tests.conftest import place_order as place
from tests.conftest import settled
from tests.zoho_fixtures import (  # noqa: F401
    database_url_of_tests,
    provisioning_worker,
    start_celery_worker,
    wait_for,
    zoho_sandbox,
)
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def events(order_id: str) -> list[str]:
    return list(WebhookLog.objects.filter(order__order_id=order_id).order_by("pk").values_list("event_type", flat=True))


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(provisioning, "BACKOFF_SCHEDULE", (0.3, 0.3, 0.3))


def test_accepted_order_is_fulfilled_with_one_confirmed_sales_order(api, product, zoho_sandbox, provisioning_worker):
    place(api, orderId="T2M-HAPPY-1")

    body = settled(api, "T2M-HAPPY-1")

    assert body["status"] == "FULFILLED"
    assert body["activationReference"].startswith("ICT-")
    [sales_order] = zoho_sandbox.sales_orders_for("T2M-HAPPY-1")
    assert body["salesOrderId"] == sales_order["salesorder_id"]
    assert sales_order["status"] == "confirmed"
    assert body["activationReference"] in sales_order["notes"]
    assert sales_order["line_items"][0]["item_id"] == product.item_id
    fulfilment = Fulfilment.objects.get(order__order_id="T2M-HAPPY-1")
    assert fulfilment.status == Fulfilment.Status.ACTIVE
    assert fulfilment.sales_order_id == sales_order["salesorder_id"]
    assert fulfilment.expires_at == fulfilment.starts_at + relativedelta(months=12)
    assert events("T2M-HAPPY-1") == ["ORDER_FULFILLED"]
    fulfilled = WebhookLog.objects.get(order__order_id="T2M-HAPPY-1").payload["data"]
    assert (fulfilled["status"], fulfilled["activationReference"]) == ("FULFILLED", body["activationReference"])


def test_returning_customer_reuses_the_zoho_contact(api, product, zoho_sandbox, provisioning_worker):
    place(api, orderId="T2M-RET-1")
    settled(api, "T2M-RET-1")
    place(api, orderId="T2M-RET-2")

    assert settled(api, "T2M-RET-2")["status"] == "FULFILLED"

    state = zoho_sandbox.state.snapshot()
    assert state["contacts"] == 1
    # The second order costs two calls: create the sales order, confirm it.
    assert state["calls"]["POST /contacts"] == 1 and state["calls"]["GET /contacts"] == 1
    assert state["calls"]["POST /salesorders"] == 2


def test_transient_failure_after_zoho_created_the_sales_order_retries_into_the_same_one(
    api, product, zoho_sandbox, provisioning_worker, fast_retries
):
    # Zoho creates the sales order but the answer is lost (503 here; a timeout behaves alike).
    zoho_sandbox.fail_next(status=503, path_contains="/salesorders", method="POST", after=True)
    place(api, orderId="T2M-TRANSIENT-1")

    body = settled(api, "T2M-TRANSIENT-1")

    assert body["status"] == "FULFILLED"
    assert len(zoho_sandbox.sales_orders_for("T2M-TRANSIENT-1")) == 1
    fulfilment = Fulfilment.objects.get(order__order_id="T2M-TRANSIENT-1")
    assert fulfilment.attempts == 2
    assert "HTTP 503" in fulfilment.last_error
    assert events("T2M-TRANSIENT-1") == ["ORDER_FULFILLED"]


def test_transient_failures_are_recorded_and_wait_on_the_schedule(api, product, zoho_sandbox, provisioning_worker):
    zoho_sandbox.fail_next(status=500, code=1000, path_contains="/salesorders", method="POST")
    place(api, orderId="T2M-WAIT-1")

    fulfilment = wait_for(
        lambda: Fulfilment.objects.filter(order__order_id="T2M-WAIT-1", last_error__contains="500").first()
    )

    assert fulfilment.attempts == 1 and fulfilment.order.status == Order.Status.PROCESSING
    wait = (fulfilment.next_attempt_at - fulfilment.last_attempt_at).total_seconds()
    assert 27 <= wait <= 33  # 30 s ± 10 % jitter
    assert zoho_sandbox.sales_orders_for("T2M-WAIT-1") == []


def test_permanent_failure_fails_the_order_with_a_partner_safe_reason(api, product, zoho_sandbox, provisioning_worker):
    zoho_sandbox.fail_next(
        status=400, code=1002, message="Item does not exist.", path_contains="/salesorders", method="POST"
    )
    place(api, orderId="T2M-PERM-1")

    body = settled(api, "T2M-PERM-1")

    assert body["status"] == "FAILED"
    assert body["failureReason"] == provisioning.REASON_REJECTED
    assert "1002" not in body["failureReason"]
    fulfilment = Fulfilment.objects.get(order__order_id="T2M-PERM-1")
    assert fulfilment.status == Fulfilment.Status.FAILED
    assert "code 1002" in fulfilment.last_error and "Item does not exist." in fulfilment.last_error
    assert events("T2M-PERM-1") == ["ORDER_FAILED"]
    assert zoho_sandbox.sales_orders_for("T2M-PERM-1") == []


def test_retries_exhausted_fail_the_order_once(api, product, zoho_sandbox, provisioning_worker, monkeypatch):
    monkeypatch.setattr(provisioning, "BACKOFF_SCHEDULE", (0.2, 0.2))
    monkeypatch.setattr(provisioning, "BACKOFF_THEN_EVERY", 10_000)
    monkeypatch.setattr(provisioning, "RETRY_WINDOW", 1)
    zoho_sandbox.fail_next(count=5, status=502, path_contains="/salesorders", method="POST")
    place(api, orderId="T2M-EXHAUST-1")

    body = settled(api, "T2M-EXHAUST-1")

    assert body["status"] == "FAILED"
    assert body["failureReason"] == provisioning.REASON_EXHAUSTED
    assert Fulfilment.objects.get(order__order_id="T2M-EXHAUST-1").attempts == 3
    assert events("T2M-EXHAUST-1") == ["ORDER_FAILED"]


def test_same_task_run_twice_at_once_makes_one_sales_order(api, product, zoho_sandbox):
    place(api, orderId="T2M-TWICE-1")  # no worker: the queued job waits; we run it by hand, twice
    order = Order.objects.get(order_id="T2M-TWICE-1")
    zoho_sandbox.fail_next(status=0, delay=0.5, path_contains="/contacts")  # keep the first run busy
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            provision_order.apply(args=[order.pk], throw=True)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    assert len(zoho_sandbox.sales_orders_for("T2M-TWICE-1")) == 1
    assert Fulfilment.objects.get(order=order).attempts == 1
    assert events("T2M-TWICE-1") == ["ORDER_FULFILLED"]


DIE_AFTER_CREATE = """
import os, sys
import django
django.setup()
from orders import provisioning
def die(**kwargs):
    os._exit(9)  # the worker is killed: Zoho has the sales order, we never stored its id
provisioning._sales_order_id_store = die
from orders.tasks import provision_order
provision_order.apply(args=[int(sys.argv[1])])
"""


def test_worker_killed_after_zoho_created_the_sales_order_is_retried_without_a_second_one(
    api, product, zoho_sandbox, clean_redis, monkeypatch
):
    place(api, orderId="T2M-KILL-1")
    clean_redis.flushdb()  # the queued job is lost too: only the sweeper can bring it back
    order = Order.objects.get(order_id="T2M-KILL-1")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings_test",
        "DATABASE_URL": database_url_of_tests(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "ZOHO_ACCOUNTS_URL": settings.ZOHO_ACCOUNTS_URL,
        "ZOHO_API_BASE": settings.ZOHO_API_BASE,
        "ZOHO_REFRESH_TOKEN": settings.ZOHO_REFRESH_TOKEN,
        "ZOHO_RATE_LIMIT": settings.ZOHO_RATE_LIMIT,
        "ZOHO_MAX_CONCURRENCY": str(settings.ZOHO_MAX_CONCURRENCY),
    }

    dead = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_CREATE, str(order.pk)], cwd=ROOT, env=env, capture_output=True, timeout=60
    )

    assert dead.returncode == 9, dead.stderr.decode()[-2000:]
    assert len(zoho_sandbox.sales_orders_for("T2M-KILL-1")) == 1
    order.refresh_from_db()
    assert (order.status, order.zoho_sales_order_id) == ("PROCESSING", "")

    # The sweeper tells the dead attempt from a running one at once (nobody holds the order's lock)
    # and queues the order for one DEAD_ATTEMPT_SETTLE later, when the create the dead worker sent
    # has surely landed in Zoho: real time, no clock moved.
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")
    with start_celery_worker():
        assert orders_redrive_stalled() == 1
        assert orders_redrive_stalled() == 0  # found once, not queued again every sweep
        assert not Fulfilment.objects.get(order=order).attempt_running
        body = settled(api, "T2M-KILL-1", timeout=DEAD_ATTEMPT_SETTLE.total_seconds() + 30)

    assert body["status"] == "FULFILLED"
    [sales_order] = zoho_sandbox.sales_orders_for("T2M-KILL-1")
    assert body["salesOrderId"] == sales_order["salesorder_id"] and sales_order["status"] == "confirmed"
    assert events("T2M-KILL-1") == ["ORDER_FULFILLED"]


def test_sweeper_leaves_a_job_that_is_waiting_in_the_queue_alone(api, product, zoho_sandbox):
    place(api, orderId="T2M-QUEUED-1")  # queued, no worker running
    due = Fulfilment.objects.get(order__order_id="T2M-QUEUED-1").next_attempt_at + SWEEP_GRACE + timedelta(seconds=1)

    assert orders_redrive_stalled(now=due) == 0


def test_sweeper_leaves_a_running_attempt_alone_and_finds_it_at_once_when_its_session_dies(api, product):
    # Given an attempt claimed by a worker whose database session holds the order's lock
    place(api, orderId="T2M-RUNNING-1")
    order = Order.objects.get(order_id="T2M-RUNNING-1")
    Fulfilment.objects.filter(order=order).update(attempt_running=True, attempts=1)
    worker_session = psycopg.connect(database_url_of_tests(), autocommit=True)
    worker_session.execute("SELECT pg_advisory_lock(%s)", [_lock_key(order.pk)])

    # When the sweeper runs while that session lives, it leaves the attempt alone
    assert orders_redrive_stalled() == 0
    assert Fulfilment.objects.get(order=order).attempt_running

    # When the session dies (the worker was killed), the next sweep finds the dead attempt at once
    worker_session.close()
    assert orders_redrive_stalled() == 1
    fulfilment = Fulfilment.objects.get(order=order)
    assert not fulfilment.attempt_running
    assert fulfilment.next_attempt_at > timezone.now() + DEAD_ATTEMPT_SETTLE - timedelta(seconds=5)
