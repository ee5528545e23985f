"""A deploy in the middle of work: SIGTERM to every Procfile process while orders are being taken,
provisioned and announced, then every process started again (operations.md: web finishes its
requests, workers finish or hand back their tasks, nothing is lost or done twice).
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from orders.models import Order
from tests.faults.system import wait_for
from tests.webhooks.conftest import Answer
from webhooks.models import WebhookLog

pytestmark = [pytest.mark.slow]

ORDERS = 16


def test_deploy_sigterm_to_every_process_then_start_loses_nothing_and_does_nothing_twice(system, product):
    system.start()
    # Zoho and the partner are slowish, so that a deploy lands in the middle of calls and deliveries.
    system.sandbox.fail_next(count=10_000, status=0, delay=0.4, path_contains="/salesorders")
    system.receiver.default = Answer(delay=0.3)

    # Given a partner sending orders one after another (retrying, as partners do, whatever failed)
    answers: dict[str, int | str] = {}

    def partner():
        for n in range(ORDERS):
            order_id = f"T2M-DEPLOY-{n}"
            try:
                answers[order_id] = system.order(order_id).status_code
            except requests.RequestException as exc:
                answers[order_id] = type(exc).__name__
            time.sleep(0.25)

    sender = threading.Thread(target=partner)
    sender.start()
    wait_for(lambda: len(answers) >= ORDERS // 2 and system.receiver.received, timeout=60, what="work in flight")

    # When every process gets SIGTERM (web, both workers, beat), exits, and is started again
    processes = list(system.processes.values())
    for process in processes:
        process.terminate()
    exits = {process.name: process.wait(timeout=90) for process in processes}
    sender.join(timeout=60)
    system.run(*exits)

    # Then every process had shut down cleanly, no request got a 5xx (refused connections while
    # down are fine: the partner retries them with the same Idempotency-Key)
    assert exits == dict.fromkeys(exits, 0), {name: system.processes[name].output() for name in exits}
    assert not [code for code in answers.values() if isinstance(code, int) and code >= 500], answers
    for order_id, code in answers.items():
        if code != 202:
            assert system.order(order_id).status_code == 202, order_id

    # and every order is fulfilled once, with one sales order and one ORDER_FULFILLED delivered once
    ids = [f"T2M-DEPLOY-{n}" for n in range(ORDERS)]

    def all_announced():
        return set(ids) <= {e["data"]["orderId"] for e in system.receiver.verified() if e["type"] == "ORDER_FULFILLED"}

    wait_for(all_announced, timeout=180, what="every order announced after the deploy")
    time.sleep(3)  # a duplicate, if any, would arrive now
    assert Order.objects.filter(order_id__in=ids, status=Order.Status.FULFILLED).count() == ORDERS
    for order_id in ids:
        assert len(system.sandbox.sales_orders_for(order_id)) == 1, order_id
        assert WebhookLog.objects.filter(order__order_id=order_id).count() == 1, order_id
    delivered = system.receiver.ids_of("ORDER_FULFILLED")
    assert len(delivered) == len(set(delivered)) == ORDERS, "an event was delivered twice"
    assert system.dead() == {}
