"""The subscription through its orders' provisioning (``orders.transitions.order_fulfil``): a NEW
order opens it, each RENEWAL extends it once and points at it, and each fulfilment keeps the period
its own order paid for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from core.times import iso_utc
from integrations.zoho.client import SalesOrder
from orders.models import Fulfilment, Order, Subscription
from orders.provisioners import Licence
from orders.subscriptions import SubscriptionMissing
from orders.transitions import order_fulfil
from tests.factories import OrderFactory, SubscriptionFactory
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def fulfil(order: Order, *, activation_reference: str | None = None) -> Order:
    """Provisioning's last step, as ``orders.provisioning`` calls it once Zoho has confirmed."""
    now = timezone.now()
    licence = Licence(
        activation_reference=activation_reference or f"LIC-{order.order_id}",
        starts_at=now,
        expires_at=timezone.localtime(now) + relativedelta(months=12),
    )
    sales_order = SalesOrder(
        salesorder_id=f"SO-{order.order_id}",
        salesorder_number=f"SO-{order.pk:05d}",
        reference_number=order.order_id,
        status="confirmed",
    )
    return order_fulfil(order_pk=order.pk, sales_order=sales_order, licence=licence)


def renewal_of(order: Order, **fields) -> Order:
    """A RENEWAL of ``order`` for one month, accepted and waiting for provisioning."""
    return OrderFactory(
        partner=order.partner,
        type=Order.Type.RENEWAL,
        renewal_of=order,
        customer_id=order.customer_id,
        product_id=order.product_id,
        tenure="1_MONTH",
        **fields,
    )


def renewed(subscription: Subscription, months: int):
    return timezone.localtime(subscription.expires_at) + relativedelta(months=months)


def events(order: Order) -> list[str]:
    return list(WebhookLog.objects.filter(order=order).order_by("pk").values_list("event_type", flat=True))


def test_new_order_provisioning_opens_an_active_subscription(partner):
    order = OrderFactory(partner=partner, order_id="T2M-OPEN-1", customer_id="CUST-OPEN")

    fulfil(order)

    order.refresh_from_db()
    fulfilment = Fulfilment.objects.get(order=order)
    subscription = order.subscription
    assert subscription.origin_order == order
    assert (subscription.partner, subscription.customer_id, subscription.product_id) == (
        partner,
        "CUST-OPEN",
        order.product_id,
    )
    assert (subscription.status, subscription.activation_reference) == ("ACTIVE", "LIC-T2M-OPEN-1")
    assert (subscription.starts_at, subscription.expires_at) == (fulfilment.starts_at, fulfilment.expires_at)
    assert fulfilment.status == Fulfilment.Status.ACTIVE
    assert events(order) == ["ORDER_FULFILLED"]


def test_renewal_extends_the_subscription_once_and_a_replay_does_not_extend_again(partner):
    subscription = SubscriptionFactory(partner=partner, expires_at=timezone.now() + timedelta(days=5))
    origin_fulfilment = Fulfilment.objects.get(order=subscription.origin_order)
    previous = subscription.expires_at
    renewal = renewal_of(subscription.origin_order)

    fulfil(renewal, activation_reference=subscription.activation_reference)
    fulfil(renewal, activation_reference=subscription.activation_reference)  # a replay

    expected = renewed(subscription, 1)
    subscription.refresh_from_db()
    renewal.refresh_from_db()
    assert (subscription.expires_at, subscription.status) == (expected, Subscription.Status.ACTIVE)
    assert renewal.subscription == subscription
    period = Fulfilment.objects.get(order=renewal)
    assert (period.status, period.starts_at, period.expires_at) == ("ACTIVE", previous, expected)
    origin_fulfilment_now = Fulfilment.objects.get(pk=origin_fulfilment.pk)
    assert origin_fulfilment_now.expires_at == origin_fulfilment.expires_at  # history, not mirrored
    assert events(renewal) == ["SUBSCRIPTION_RENEWED"]
    data = WebhookLog.objects.get(order=renewal).payload["data"]
    assert (data["renewalOf"], data["previousExpiresAt"], data["expiresAt"]) == (
        subscription.origin_order.order_id,
        iso_utc(previous),
        iso_utc(expected),
    )


def test_two_renewals_extend_twice(partner):
    subscription = SubscriptionFactory(partner=partner, expires_at=timezone.now() + timedelta(days=5))
    expected = renewed(subscription, 2)
    first = renewal_of(subscription.origin_order)
    fulfil(first, activation_reference=subscription.activation_reference)
    second = renewal_of(first)  # a renewal of the renewal: the same subscription, one hop away

    fulfil(second, activation_reference=subscription.activation_reference)

    subscription.refresh_from_db()
    assert subscription.expires_at == expected
    assert set(subscription.orders.values_list("pk", flat=True)) == {
        subscription.origin_order_id,
        first.pk,
        second.pk,
    }
    first_period, second_period = (Fulfilment.objects.get(order=o) for o in (first, second))
    assert second_period.starts_at == first_period.expires_at
    assert second_period.expires_at == expected


def test_an_expired_subscription_renewed_is_active_again_from_now(partner):
    subscription = SubscriptionFactory(
        partner=partner, expires_at=timezone.now() - timedelta(days=10), status=Subscription.Status.EXPIRED
    )
    renewal = renewal_of(subscription.origin_order)
    before = timezone.now()

    fulfil(renewal, activation_reference=subscription.activation_reference)

    subscription.refresh_from_db()
    period = Fulfilment.objects.get(order=renewal)
    assert subscription.status == Subscription.Status.ACTIVE
    assert before <= period.starts_at <= timezone.now()
    assert (
        subscription.expires_at == period.expires_at == timezone.localtime(period.starts_at) + relativedelta(months=1)
    )
    # The origin order's fulfilment is history: it stays EXPIRED.
    assert Fulfilment.objects.get(order=subscription.origin_order).status == Fulfilment.Status.EXPIRED


def test_a_renewal_of_an_order_without_subscription_is_refused_and_nothing_changes(partner):
    target = OrderFactory(partner=partner, status=Order.Status.FULFILLED)  # no subscription row
    renewal = renewal_of(target)

    with pytest.raises(SubscriptionMissing):
        fulfil(renewal)

    renewal.refresh_from_db()
    assert (renewal.status, renewal.subscription) == (Order.Status.PROCESSING, None)
    assert Fulfilment.objects.get(order=renewal).status == Fulfilment.Status.PENDING
    assert Subscription.objects.count() == 0
    assert WebhookLog.objects.count() == 0
