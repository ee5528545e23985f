"""Reads of the order flow: a partner's orders, stuck orders, figures for health and the admin."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from orders.models import Fulfilment, Order
from partners.models import Partner

STUCK_AFTER = timedelta(minutes=15)


def partner_orders(partner: Partner) -> QuerySet[Order]:
    return Order.objects.filter(partner=partner).select_related("fulfilment", "renewal_of")


def partner_order(partner: Partner, order_id: str) -> Order | None:
    return partner_orders(partner).filter(order_id=order_id).first()


def stuck_orders(now=None) -> QuerySet[Order]:
    now = now or timezone.now()
    return Order.objects.filter(status=Order.Status.PROCESSING, updated_at__lt=now - STUCK_AFTER)


def active_fulfilments() -> QuerySet[Fulfilment]:
    return Fulfilment.objects.filter(status=Fulfilment.Status.ACTIVE)


def orders_needing_attention(now=None) -> QuerySet[Order]:
    """The admin's "stuck" selection: PROCESSING for over 15 minutes, or with a FAILED webhook event.

    A union of two index-backed id sets (orders by status and updated_at, webhook events by status),
    so that it stays fast at millions of orders.
    """
    from webhooks.models import WebhookLog

    undelivered = WebhookLog.objects.filter(status=WebhookLog.Status.FAILED, order__isnull=False).values("order_id")
    return Order.objects.filter(pk__in=stuck_orders(now).values("pk").union(undelivered))
