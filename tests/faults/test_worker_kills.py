"""Workers killed for real (SIGKILL, as an OOM kill or a lost machine) in the middle of an order or of
a webhook delivery, under the Procfile's processes with the production leases, sweep and beat
intervals (operations.md, "Faults the service rides out"). Nothing is shortened, no clock moved.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from orders.models import Order
from tests.faults.system import ProcfileProcess, System, wait_for
from tests.webhooks.conftest import Answer
from webhooks.models import WebhookLog

pytestmark = [pytest.mark.slow]

PROVISIONING_BOUND_SECONDS = 120
DELIVERY_BOUND_SECONDS = 180


def receiver_of(workers: list[ProcfileProcess], task: str) -> ProcfileProcess:
    """The worker whose log says it received a ``task``."""
    pattern = re.compile(rf"Task {re.escape(task)}\[[0-9a-f-]+\] received")

    def found():
        return next((worker for worker in workers if pattern.search(worker.output(1_000_000))), None)

    return wait_for(found, timeout=30, interval=0.05, what=f"a worker receiving {task}")


def announced(system: System, order_id: str, event_type: str = "ORDER_FULFILLED") -> list[str]:
    return [e["id"] for e in system.receiver.verified() if e["type"] == event_type and e["data"]["orderId"] == order_id]


MOMENTS = {
    # the sales-order create is in flight at Zoho (it lands there 3 s later, after the kill)
    "create-in-flight": {"path_contains": "/salesorders", "method": "POST", "delay": 3.0, "kill": "group"},
    # Zoho made the sales order; the worker dies while confirming it
    "confirm-in-flight": {"path_contains": "/status/confirmed", "method": "POST", "delay": 3.0, "kill": "group"},
    # the kernel's OOM killer takes the pool processes, the worker's main process lives on
    "pool-process-oom": {"path_contains": "/salesorders", "method": "POST", "delay": 3.0, "kill": "pool"},
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_provisioning_worker_killed_mid_order_another_finishes_it_within_2_minutes_with_one_sales_order(
    system, product, moment
):
    fault = MOMENTS[moment]
    system.start("web", "webhooks", "beat")
    workers = system.run("worker", suffix="-a") + system.run("worker", suffix="-b")
    system.sandbox.fail_next(
        status=0, delay=fault["delay"], path_contains=fault["path_contains"], method=fault["method"]
    )

    # Given an order whose worker is inside the slowed Zoho call
    assert system.order("T2M-KILL-1").status_code == 202
    busy = receiver_of(workers, "orders.provision_order")
    wait_for(lambda: not system.sandbox.state.faults, timeout=30, interval=0.05, what="the slowed call in flight")

    # When the worker is killed (the whole process group, or only its pool processes)
    if fault["kill"] == "group":
        busy.kill()
    else:
        for pid in busy.children():
            os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    # Then another worker finishes the order within 2 minutes: one sales order, one ORDER_FULFILLED
    wait_for(lambda: announced(system, "T2M-KILL-1"), timeout=PROVISIONING_BOUND_SECONDS, what="ORDER_FULFILLED")
    print(f"\n{moment}: fulfilled and announced {time.monotonic() - killed:.1f} s after the kill")
    order = Order.objects.get(order_id="T2M-KILL-1")
    [sales_order] = system.sandbox.sales_orders_for("T2M-KILL-1")
    assert order.status == Order.Status.FULFILLED
    assert order.zoho_sales_order_id == sales_order["salesorder_id"] and sales_order["status"] == "confirmed"
    assert list(WebhookLog.objects.filter(order=order).values_list("event_type", flat=True)) == ["ORDER_FULFILLED"]
    time.sleep(2)
    assert len(announced(system, "T2M-KILL-1")) == 1
    survivors = [w for w in workers if w is not busy] + ([busy] if fault["kill"] == "pool" else [])
    assert all(worker.alive() for worker in survivors)


def test_webhooks_worker_killed_mid_delivery_the_event_is_delivered_within_3_minutes_with_its_id(system, product):
    system.start("web", "worker", "beat")
    workers = system.run("webhooks", suffix="-a") + system.run("webhooks", suffix="-b")
    # The partner's endpoint takes 10 s over the first delivery, then answers at once.
    system.receiver.script = [Answer(delay=10.0)]

    # Given the ORDER_FULFILLED delivery is in flight
    assert system.order("T2M-HOOK-KILL-1").status_code == 202
    wait_for(lambda: system.receiver.received, timeout=60, interval=0.05, what="the first delivery in flight")
    first_id = system.receiver.received[0].event_id
    busy = receiver_of(workers, "webhooks.deliver_webhook")

    # When its worker is killed
    busy.kill()
    killed = time.monotonic()

    # Then the event is delivered again within 3 minutes, under the same event id, and recorded SENT
    def delivered_again():
        ids = [event["id"] for event in system.receiver.verified()]
        return len(ids) >= 2 and WebhookLog.objects.filter(event_id=first_id, status="SENT").exists()

    wait_for(delivered_again, timeout=DELIVERY_BOUND_SECONDS, what="the event delivered again")
    print(f"\nwebhooks worker killed: delivered {time.monotonic() - killed:.1f} s after the kill")
    assert {event["id"] for event in system.receiver.verified()} == {first_id}
    assert WebhookLog.objects.filter(order__order_id="T2M-HOOK-KILL-1").count() == 1
