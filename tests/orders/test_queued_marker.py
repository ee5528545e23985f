"""The sweeper's queued marker: there before a provisioning job can be received, gone when no job is
behind it.

A marker set after the publish could land after an idle worker had already received the job and
cleared it; it then stayed for an hour with no job behind it, and an order whose attempt failed
meanwhile was hidden from the sweeper (found by tests/faults/test_redis_faults.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from celery.signals import before_task_publish
from django.conf import settings

from core.redis_roles import limits
from orders.models import Fulfilment, Order
from orders.queueing import QUEUED_MARKER_KEY, SWEEP_GRACE, order_enqueue
from orders.sweeper import orders_redrive_stalled
from orders.tasks import provision_order
from tests.conftest import place_order as place
from tests.factories import OrderFactory
from tests.zoho_fixtures import PrivateRedis, point_celery_at

pytestmark = pytest.mark.django_db(transaction=True)


def broker_client() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def marker(order_pk: int):
    return limits.get(QUEUED_MARKER_KEY.format(order_pk=order_pk))


def test_the_marker_is_set_before_the_job_reaches_the_broker(partner):
    order = OrderFactory(partner=partner)
    seen_at_publish = []

    def look(sender=None, body=None, **_kwargs):
        seen_at_publish.append(marker(order.pk))

    # Connected after the project's own receiver, so it runs after it and just before the message
    # is written: what a worker receiving the job at once would find.
    before_task_publish.connect(look, sender="orders.provision_order", weak=False)
    try:
        assert provision_order.apply_async(args=[order.pk], countdown=3600)
    finally:
        before_task_publish.disconnect(look, sender="orders.provision_order")

    assert seen_at_publish == [1]
    assert marker(order.pk) == 1


def test_a_publish_that_fails_leaves_no_marker_so_the_sweeper_queues_the_order(partner, tmp_path):
    order = OrderFactory(partner=partner)
    broker = PrivateRedis(tmp_path / "broker")  # a broker that is not running: every publish fails
    previous = point_celery_at(broker.url)
    try:
        assert order_enqueue(order.pk) is False
    finally:
        point_celery_at(previous)

    assert marker(order.pk) is None


def test_a_marker_left_by_a_job_lost_between_broker_and_worker_does_not_hide_the_order(api, product):
    # Given an order whose job a worker took just as Redis went away: the job is gone, its marker stays
    place(api, orderId="T2M-LOST-1")
    order = Order.objects.get(order_id="T2M-LOST-1")
    assert marker(order.pk) == 1
    broker_client().delete("provisioning")  # the job left the queue and never reached a worker
    due = Fulfilment.objects.get(order=order).next_attempt_at + SWEEP_GRACE + timedelta(seconds=1)

    # Then the sweep queues it again: no job waits in the queue, so the marker is not believed
    assert orders_redrive_stalled(now=due) == 1
    assert broker_client().llen("provisioning") == 1


def test_a_marker_is_believed_while_jobs_wait_in_the_queue(api, product):
    place(api, orderId="T2M-WAITING-1")
    place(api, orderId="T2M-WAITING-2")
    waiting = Fulfilment.objects.get(order__order_id="T2M-WAITING-2").next_attempt_at
    assert broker_client().llen("provisioning") == 2

    assert orders_redrive_stalled(now=waiting + SWEEP_GRACE + timedelta(seconds=1)) == 0
    assert broker_client().llen("provisioning") == 2
