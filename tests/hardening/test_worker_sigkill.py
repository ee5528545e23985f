# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""A real ``celery -A t2mobile_portal worker`` process SIGKILLed while its Zoho sales-order call is
in flight: Zoho (the local sandbox) still creates the sales order, our tables never hear of it, and
the order must still end FULFILLED with that one sales order — found by its reference, never made
twice — once the sweeper hands the order to a fresh worker process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from orders.models import Fulfilment, Order
from orders.provisioning import SWEEP_GRACE, orders_redrive_stalled
from tests.conftest import place_order
from tests.zoho_fixtures import database_url_of_tests, wait_for, zoho_sandbox  # noqa: F401
from webhooks.models import WebhookLog

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``celery -A t2mobile_portal worker`` in its own process group, logging to a file."""

    def __init__(self, env: dict, log: Path):
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "t2mobile_portal",
                "worker",
                "-Q",
                "provisioning,default",
                "-P",
                "solo",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "INFO",
                "-n",
                f"sigkill-{os.getpid()}-{id(self)}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> int:
        os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_env(zoho_sandbox):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings_test",
        "DATABASE_URL": database_url_of_tests(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "ZOHO_ACCOUNTS_URL": settings.ZOHO_ACCOUNTS_URL,
        "ZOHO_API_BASE": settings.ZOHO_API_BASE,
        "ZOHO_CLIENT_ID": settings.ZOHO_CLIENT_ID,
        "ZOHO_CLIENT_SECRET": settings.ZOHO_CLIENT_SECRET,
        "ZOHO_REFRESH_TOKEN": settings.ZOHO_REFRESH_TOKEN,
        "ZOHO_ORGANIZATION_ID": settings.ZOHO_ORGANIZATION_ID,
        "ZOHO_RATE_LIMIT": settings.ZOHO_RATE_LIMIT,
        "ZOHO_MAX_CONCURRENCY": str(settings.ZOHO_MAX_CONCURRENCY),
        "CELERY_SKIP_CHECKS": "1",
    }


def test_worker_sigkilled_during_the_sales_order_call_ends_fulfilled_with_one_sales_order(
    api, product, zoho_sandbox, worker_env, tmp_path
):
    # Zoho takes 2 s over the sales-order create; the worker dies during that call.
    zoho_sandbox.fail_next(status=0, delay=2.0, path_contains="/salesorders", method="POST")
    first = WorkerProcess(worker_env, tmp_path / "worker-1.log")
    try:
        place_order(api, orderId="T2M-SIGKILL-1")
        wait_for(lambda: not zoho_sandbox.state.faults, timeout=30)  # the slowed call is in flight
        assert first.kill() == -signal.SIGKILL
    finally:
        first.stop()

    # Zoho finishes the call it was given; nothing of it reached our tables.
    wait_for(lambda: zoho_sandbox.sales_orders_for("T2M-SIGKILL-1"), timeout=10)
    order = Order.objects.get(order_id="T2M-SIGKILL-1")
    fulfilment = Fulfilment.objects.get(order=order)
    assert (order.status, order.zoho_sales_order_id, fulfilment.attempts) == ("PROCESSING", "", 1)

    # When the dead attempt's lease has run out, the sweeper hands the order to a new worker.
    second = WorkerProcess(worker_env, tmp_path / "worker-2.log")
    try:
        assert orders_redrive_stalled(now=fulfilment.next_attempt_at + SWEEP_GRACE) == 1
        wait_for(lambda: Order.objects.get(pk=order.pk).status != Order.Status.PROCESSING, timeout=60)
    finally:
        second.stop()

    order.refresh_from_db()
    [sales_order] = zoho_sandbox.sales_orders_for("T2M-SIGKILL-1")
    assert order.status == Order.Status.FULFILLED, (tmp_path / "worker-2.log").read_text()[-3000:]
    assert order.zoho_sales_order_id == sales_order["salesorder_id"] and sales_order["status"] == "confirmed"
    assert list(WebhookLog.objects.filter(order=order).values_list("event_type", flat=True)) == ["ORDER_FULFILLED"]
    assert Fulfilment.objects.get(order=order).attempts == 2


def test_beat_and_a_worker_process_fulfil_an_order_whose_job_was_lost(
    api, product, zoho_sandbox, worker_env, clean_redis, tmp_path
):
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    # The order was accepted, then Redis lost its job (a flush, a failover) a few minutes ago.
    place_order(api, orderId="T2M-BEAT-1")
    clean_redis.flushdb()
    Fulfilment.objects.filter(order__order_id="T2M-BEAT-1").update(
        next_attempt_at=timezone.now() - SWEEP_GRACE - SWEEP_GRACE
    )
    # Time compressed: the sweeper's "every minute" becomes every second (the row migrate installed).
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    sweeper = PeriodicTask.objects.get(task="orders.redrive_stalled_orders")
    sweeper.crontab, sweeper.interval = None, every_second
    sweeper.save()

    worker = WorkerProcess(worker_env, tmp_path / "worker.log")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "t2mobile_portal", "beat", "-l", "INFO", "--pidfile="],
        cwd=tmp_path,
        env={**worker_env, "PYTHONPATH": str(ROOT)},
        stdout=(tmp_path / "beat.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: Order.objects.get(order_id="T2M-BEAT-1").status != Order.Status.PROCESSING, timeout=60)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=20)
        worker.stop()

    order = Order.objects.get(order_id="T2M-BEAT-1")
    assert order.status == Order.Status.FULFILLED, (tmp_path / "beat.log").read_text()[-3000:]
    assert "orders.redrive_stalled_orders" in (tmp_path / "beat.log").read_text()
    assert len(zoho_sandbox.sales_orders_for("T2M-BEAT-1")) == 1
