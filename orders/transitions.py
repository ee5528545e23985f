"""Every status change of an order after intake, one function per transition.

Each locks the order row (``select_for_update``), checks the current state (a guard), makes the
change and records the partner's event (``orders/events.py``) in the same transaction, so running
one twice is harmless: FULFILLED (opening or extending the subscription), FAILED, and the staff actions re-drive,
hold and release.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from core.instruments import ORDERS_FINISHED
from core.times import iso_utc
from integrations.zoho.values import SalesOrder
from orders.events import order_event_data, order_event_record
from orders.models import Fulfilment, Order
from orders.provisioners import Licence
from orders.queueing import order_enqueue_on_commit
from orders.subscriptions import subscription_open, subscription_renew

logger = logging.getLogger(__name__)


class OrderStateError(Exception):
    """The order is not in a state that allows this change (e.g. re-driving a FULFILLED order)."""


def order_locked(order_pk: int) -> tuple[Order, Fulfilment]:
    """The order and its fulfilment, both row-locked, with the partner (read, not locked) that the
    event needs: one statement instead of three, taken from the fulfilment's side because its
    foreign key to the order is an inner join (``FOR UPDATE`` refuses the nullable side of the outer
    join that ``Order.select_related("fulfilment")`` would be)."""
    try:
        fulfilment = (
            Fulfilment.objects.select_for_update(of=("self", "order"))
            .select_related("order", "order__partner")
            .get(order_id=order_pk)
        )
    except Fulfilment.DoesNotExist:
        Order.objects.get(pk=order_pk)  # raises Order.DoesNotExist when there is no order at all
        raise
    order = fulfilment.order
    order.fulfilment = fulfilment  # the serializer reads the fulfilment through the order
    return order, fulfilment


def attempt_end(fulfilment: Fulfilment) -> None:
    """Inside the outcome's transaction: the running attempt is over (whatever the outcome)."""
    if fulfilment.attempt_running:
        fulfilment.attempt_running = False
        Fulfilment.objects.filter(pk=fulfilment.pk).update(attempt_running=False)


def order_fulfil(*, order_pk: int, sales_order: SalesOrder, licence: Licence) -> Order:
    """PROCESSING → FULFILLED with the fulfilment ACTIVE, in one transaction: a NEW order opens its
    subscription and sends ORDER_FULFILLED; a RENEWAL extends the subscription of the order it
    renews and sends SUBSCRIPTION_RENEWED. The guard (PROCESSING order, PENDING fulfilment) makes a
    replay a no-op, so the same renewal never extends twice."""

    with transaction.atomic():
        order, fulfilment = order_locked(order_pk)
        if order.status != Order.Status.PROCESSING or fulfilment.status != Fulfilment.Status.PENDING:
            attempt_end(fulfilment)  # staff changed the order meanwhile: their change stands
            return order
        fulfilment.attempt_running = False
        fulfilment.status = Fulfilment.Status.ACTIVE
        fulfilment.activation_reference = licence.activation_reference
        fulfilment.sales_order_id = sales_order.salesorder_id
        fulfilment.next_attempt_at = None
        renewal = None
        if order.type == Order.Type.RENEWAL and order.renewal_of_id is not None:
            # The fulfilment keeps the period this renewal paid for; the subscription carries on.
            renewal = subscription_renew(order=order, now=timezone.now())
            subscription = renewal.subscription
            fulfilment.starts_at, fulfilment.expires_at = renewal.starts_at, renewal.expires_at
        else:
            subscription = subscription_open(order=order, licence=licence)
            fulfilment.starts_at, fulfilment.expires_at = licence.starts_at, licence.expires_at
        fulfilment.save()
        order.status = Order.Status.FULFILLED
        order.activation_reference = licence.activation_reference
        order.zoho_sales_order_id = sales_order.salesorder_id
        order.failure_reason = ""
        order.subscription = subscription
        order.save(
            update_fields=[
                "status",
                "activation_reference",
                "zoho_sales_order_id",
                "failure_reason",
                "subscription",
                "updated_at",
            ]
        )
        data = order_event_data(order)
        if renewal is not None:
            data.update(
                {
                    "renewalOf": order.renewal_of.order_id,
                    "previousExpiresAt": iso_utc(renewal.previous_expires_at),
                    "expiresAt": iso_utc(renewal.expires_at),
                }
            )
            order_event_record(order=order, event_type="SUBSCRIPTION_RENEWED", data=data)
        else:
            order_event_record(order=order, event_type="ORDER_FULFILLED", data=data)
        transaction.on_commit(ORDERS_FINISHED.labels(order.partner.partner_id, Order.Status.FULFILLED).inc)
    logger.info("order fulfilled", extra={"order_id": order.order_id, "sales_order_id": sales_order.salesorder_id})
    return order


def order_mark_failed(*, order: Order, reason: str, error: str = "") -> Order:
    """PROCESSING or PENDING → FAILED with ``reason`` (shown to the partner) and ORDER_FAILED.

    ``error`` (Zoho's code and message) goes to ``fulfilment.last_error`` only. A FAILED or
    FULFILLED order is left as it is.
    """

    with transaction.atomic():
        order, fulfilment = order_locked(order.pk)
        if order.status not in (Order.Status.PROCESSING, Order.Status.PENDING):
            return order
        order.status = Order.Status.FAILED
        order.failure_reason = reason[:300]
        order.save(update_fields=["status", "failure_reason", "updated_at"])
        if fulfilment.status == Fulfilment.Status.PENDING:
            fulfilment.status = Fulfilment.Status.FAILED
        fulfilment.last_error = (error or reason)[:1000]
        fulfilment.next_attempt_at = None
        fulfilment.attempt_running = False
        fulfilment.save(update_fields=["status", "last_error", "next_attempt_at", "attempt_running", "updated_at"])
        order_event_record(order=order, event_type="ORDER_FAILED", data=order_event_data(order))
        transaction.on_commit(ORDERS_FINISHED.labels(order.partner.partner_id, Order.Status.FAILED).inc)
    logger.warning("order failed", extra={"order_id": order.order_id, "reason": reason})
    return order


# --- Staff actions (the admin and ``manage.py redrive_order`` call these) -------------------------


def order_redrive(*, order: Order) -> Order:
    """FAILED, stuck or on-hold → PROCESSING with a fresh retry budget, queued on commit."""
    with transaction.atomic():
        order, fulfilment = order_locked(order.pk)
        if order.status == Order.Status.FULFILLED:
            raise OrderStateError("a fulfilled order cannot be re-driven")
        previous = fulfilment.last_error or order.failure_reason
        order.status = Order.Status.PROCESSING
        order.failure_reason = ""
        order.save(update_fields=["status", "failure_reason", "updated_at"])
        if fulfilment.status == Fulfilment.Status.FAILED:
            fulfilment.status = Fulfilment.Status.PENDING
        fulfilment.attempts = 0
        # Non-empty on purpose: the next attempt must look for a sales order made by earlier ones.
        fulfilment.last_error = f"re-driven; before: {previous}"[:1000] if previous else "re-driven"
        fulfilment.next_attempt_at = timezone.now()
        fulfilment.save(update_fields=["status", "attempts", "last_error", "next_attempt_at", "updated_at"])
        order_enqueue_on_commit(order.pk)
    return order


def order_hold(*, order: Order) -> Order:
    """PROCESSING → PENDING (on hold): the sweeper and any queued job leave it alone."""
    with transaction.atomic():
        order, _ = order_locked(order.pk)
        if order.status == Order.Status.PROCESSING:
            order.status = Order.Status.PENDING
            order.save(update_fields=["status", "updated_at"])
        elif order.status != Order.Status.PENDING:
            raise OrderStateError(f"a {order.status} order cannot be put on hold")
    return order


def order_release(*, order: Order) -> Order:
    """PENDING → PROCESSING, queued on commit."""
    with transaction.atomic():
        order, fulfilment = order_locked(order.pk)
        if order.status == Order.Status.PENDING:
            order.status = Order.Status.PROCESSING
            order.save(update_fields=["status", "updated_at"])
            fulfilment.next_attempt_at = timezone.now()
            fulfilment.save(update_fields=["next_attempt_at", "updated_at"])
            order_enqueue_on_commit(order.pk)
        elif order.status != Order.Status.PROCESSING:
            raise OrderStateError(f"a {order.status} order cannot be released")
    return order
