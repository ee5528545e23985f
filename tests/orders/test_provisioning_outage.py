# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""Redis down at intake: the order is stored, and the sweeper provisions it once Redis is back.

Runs against a private redis-server on its own port (never the shared one), which the test stops
and starts again; Celery and the cache are pointed at it for the test.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.outage import redis_client
from orders import sweeper
from orders.api import fulfilment_answer
from orders.models import Fulfilment, Order
from orders.tasks import redrive_stalled_orders
from tests.conftest import order_payload, point_redis_roles_at
from tests.zoho_fixtures import (  # noqa: F401
    point_celery_at,
    private_redis,
    start_celery_worker,
    wait_for,
    zoho_sandbox,
)
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_of_our_own(private_redis, settings):
    point_redis_roles_at(settings, private_redis.url, timeout=1)
    previous = point_celery_at(private_redis.url)
    yield private_redis
    point_celery_at(previous)
    redis_client.cache_clear()  # the settings are restored: the limits' client follows them


def test_order_accepted_while_redis_is_down_is_fulfilled_by_the_sweeper(
    partner, product, zoho_sandbox, redis_of_our_own, monkeypatch
):
    redis_of_our_own.stop()
    payload = order_payload(orderId="T2M-OUTAGE-1")

    # The intake, as the view calls it (the API's Redis-backed auth throttle is another matter).
    result = fulfilment_answer(partner=partner, payload=payload, idempotency_key="key-outage-1")

    assert result.status_code == 202, result.body
    order = Order.objects.get(order_id="T2M-OUTAGE-1")
    assert order.status == Order.Status.PROCESSING
    assert Fulfilment.objects.get(order=order).attempts == 0  # nothing was queued or run

    redis_of_our_own.start()  # back, and empty
    monkeypatch.setattr(sweeper, "SWEEP_GRACE", timedelta(0))
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")
    with start_celery_worker():
        redrive_stalled_orders.delay()  # what beat sends every minute

        order = wait_for(lambda: Order.objects.filter(pk=order.pk, status=Order.Status.FULFILLED).first())

    assert len(zoho_sandbox.sales_orders_for("T2M-OUTAGE-1")) == 1
    assert order.activation_reference.startswith("ICT-")
    assert list(WebhookLog.objects.filter(order=order).values_list("event_type", flat=True)) == ["ORDER_FULFILLED"]
