"""Zoho's own waits under the Procfile's processes: a per-minute limit answer (HTTP 429, code 44,
no Retry-After, as Zoho documents it) pauses every worker for 60 s of real time, the orders wait in
PROCESSING without using up their retries, and all of them go out once Zoho takes calls again."""

from __future__ import annotations

import time

import pytest

from orders.models import Fulfilment, Order
from tests.faults.system import wait_for

pytestmark = [pytest.mark.slow]


def test_a_per_minute_limit_answer_pauses_every_worker_and_the_orders_go_out_after_it(system, product):
    system.start("web", "worker", "webhooks", "beat")
    system.sandbox.fail_next(status=429, code=44, message="You have made too many requests continuously.")
    ids = [f"T2M-LIMIT-{n}" for n in range(3)]

    # Given Zoho answers the first call with its per-minute limit
    assert [system.order(oid).status_code for oid in ids] == [202] * 3
    # (the partner sees Zoho down in health; the reason is the operators', in the shared Redis)
    wait_for(lambda: system.health()["checks"].get("zoho") == "down", timeout=30, what="Zoho down in health")
    paused = time.monotonic()
    assert b"code 44" in system.redis.client("limits").get("t2m:zoho:paused_reason")

    # Then nothing is fulfilled during the 60 s pause, every order waits in PROCESSING
    time.sleep(45)
    assert Order.objects.filter(order_id__in=ids, status=Order.Status.PROCESSING).count() == 3

    # and every order goes out within 2 minutes of the pause's end, none having used a retry
    wait_for(
        lambda: Order.objects.filter(order_id__in=ids, status=Order.Status.FULFILLED).count() == 3,
        timeout=60 + 120 - (time.monotonic() - paused),
        what="every order fulfilled after the pause",
    )
    print(f"\nZoho limit 44: orders out {time.monotonic() - paused:.1f} s after the pause began")
    assert list(Fulfilment.objects.filter(order__order_id__in=ids).values_list("attempts", flat=True)) == [1, 1, 1]
    assert system.dead() == {}
