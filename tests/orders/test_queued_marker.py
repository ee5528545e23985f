"""The sweeper's queued marker: there before a provisioning job can be received, gone when no job is
behind it.

A marker set after the publish could land after an idle worker had already received the job and
cleared it; it then stayed for an hour with no job behind it, and an order whose attempt failed
meanwhile was hidden from the sweeper (found by tests/faults/test_redis_faults.py).
"""

from __future__ import annotations

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache

from orders.queueing import QUEUED_MARKER_KEY, order_enqueue
from orders.tasks import provision_order
from tests.factories import OrderFactory
from tests.zoho_fixtures import PrivateRedis, point_celery_at

pytestmark = pytest.mark.django_db(transaction=True)


def marker(order_pk: int):
    return cache.get(QUEUED_MARKER_KEY.format(order_pk=order_pk))


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
