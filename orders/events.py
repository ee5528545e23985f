"""The events orders send to the partner: their payloads (``webhooks.md``), recorded through the
generic outbox of ``webhooks`` in the caller's transaction.

``webhooks`` knows partners, never orders: it signs and delivers whatever ``data`` it is given, and
keeps the events of one order in order by the order's id (``order_pk``). What an order event says is
decided here, in one place.
"""

from __future__ import annotations

from core.times import iso_utc
from orders.models import Order, Subscription
from orders.serializers import order_representation
from webhooks.models import WebhookLog
from webhooks.outbox import event_record


def order_event_data(order: Order) -> dict:
    """The order as GET /t2mobile/orders/{id} shows it, without the ``success`` flag."""
    data = order_representation(order)
    data.pop("success", None)
    return data


def subscription_event_data(*, subscription: Subscription) -> dict:
    """EXPIRY_REMINDER and SUBSCRIPTION_EXPIRED: ``orderId`` and ``metadata`` of the order that opened
    the subscription (``subscription.origin_order``, loaded by the caller), the rest from the
    subscription itself."""
    order = subscription.origin_order
    return {
        "orderId": order.order_id,
        "customerId": subscription.customer_id,
        "productId": subscription.product_id,
        "activationReference": subscription.activation_reference or None,
        "expiresAt": iso_utc(subscription.expires_at),
        "metadata": order.metadata or {},
    }


def order_event_record(*, order: Order, event_type: str, data: dict, dedup_key: str | None = None) -> WebhookLog | None:
    """One event about ``order`` in the caller's transaction (None when ``dedup_key`` was used before)."""
    return event_record(partner=order.partner, event_type=event_type, data=data, order_pk=order.pk, dedup_key=dedup_key)
