"""Reads of the order flow: a partner's orders, stuck orders, figures for health and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from orders.models import Fulfilment, Order
from orders.provisioners import SalesOrderVoid
from partners.models import Partner
from webhooks.models import WebhookLog

STUCK_AFTER = timedelta(minutes=15)


def partner_orders(partner: Partner) -> QuerySet[Order]:
    return Order.objects.filter(partner=partner).select_related("fulfilment", "renewal_of")


def partner_order(partner: Partner, order_id: str) -> Order | None:
    return partner_orders(partner).filter(order_id=order_id).first()


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    next_before: int | None  # the keyset cursor of the next page; None on the last page


def partner_orders_page(
    *,
    partner: Partner,
    limit: int,
    status: str | None = None,
    customer_id: str | None = None,
    updated_since: datetime | None = None,
    before: int | None = None,
) -> OrderPage:
    """One page of the partner's orders, newest first, keyset-paginated on the primary key (stable
    while orders are added: a page never repeats or skips one)."""
    orders = partner_orders(partner).order_by("-pk")
    if status is not None:
        orders = orders.filter(status=status)
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
    if updated_since is not None:
        orders = orders.filter(updated_at__gte=updated_since)
    if before is not None:
        orders = orders.filter(pk__lt=before)
    page = list(orders[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return OrderPage(orders=page, next_before=page[-1].pk if more and page else None)


def stuck_orders(now=None) -> QuerySet[Order]:
    now = now or timezone.now()
    return Order.objects.filter(status=Order.Status.PROCESSING, updated_at__lt=now - STUCK_AFTER)


def orders_needing_attention(now=None) -> QuerySet[Order]:
    """The admin's "stuck" selection: PROCESSING for over 15 minutes, or with a FAILED webhook event.

    A union of two index-backed id sets (orders by status and updated_at, webhook events by status),
    so that it stays fast at millions of orders.
    """
    undelivered = WebhookLog.objects.filter(status=WebhookLog.Status.FAILED, order__isnull=False).values("order_id")
    return Order.objects.filter(pk__in=stuck_orders(now).values("pk").union(undelivered))


def orders_on_void_sales_orders() -> QuerySet[Order]:
    """PROCESSING orders waiting because their Zoho sales order is void (``SalesOrderVoid`` in the
    fulfilment's ``last_error``, which starts with the error's class name)."""
    return Order.objects.filter(
        status=Order.Status.PROCESSING,
        fulfilment__status=Fulfilment.Status.PENDING,
        fulfilment__last_error__startswith=SalesOrderVoid.__name__,
    )
