"""Order intake: the one place where an order is created (``order_accept``).

It runs inside the caller's transaction (``orders.idempotency.idempotent_answer`` from the API):
every check runs before the first write, and the order, its fulfilment row and the idempotency
record commit together. The provisioning job is queued only after that commit
(``orders.queueing.order_enqueue``).

An orderId is unique per partner for ever, and an idempotency key names one order: the order's
insert leaves a row that would break either unique index unwritten (``orders.sql.row_insert``), so
the database decides even between concurrent requests, and ``_refuse_clash`` says which. A clash
is answered before any other refusal, as if it were checked first.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalogue.models import ProductPlan
from catalogue.selectors import published_plan, published_product
from core import errors
from core.instruments import ORDERS_ACCEPTED
from core.logging import order_id_var
from orders.models import Fulfilment, Order
from orders.queueing import order_enqueue_on_commit
from orders.sql import row_insert
from partners.models import Partner

logger = logging.getLogger(__name__)

_REFUSALS = (errors.UnknownProduct, errors.TenureNotOffered, errors.RenewalTargetNotFound)


def order_accept(*, partner: Partner, data: dict, idempotency_key: str) -> Order:
    """Create the order of a validated fulfilment request (``FulfilmentRequestSerializer``), with its
    PENDING fulfilment, and queue its provisioning after the commit. Raises the contract's errors
    (duplicate order, key reused, unknown product, tenure not offered, renewal target not found)
    before any write.
    """
    order_id_var.set(data["orderId"])
    try:
        plan = _plan_offered(data)
        renewal_of = _renewal_target(partner=partner, data=data, product_id=plan.product.item_id)
    except _REFUSALS:
        _refuse_clash(partner=partner, order_id=data["orderId"], idempotency_key=idempotency_key)
        raise

    now = timezone.now()
    order = Order(
        partner=partner,
        order_id=data["orderId"],
        type=data["type"],
        renewal_of=renewal_of,
        customer_id=data["customerId"],
        customer_name=data["customerName"],
        customer_email=data["customerEmail"],
        customer_phone=data["customerPhone"],
        product_id=plan.product.item_id,
        tenure=data["tenure"],
        quantity=data["quantity"],
        unit_price=plan.price,
        currency=settings.CURRENCY,
        metadata=data.get("metadata") or {},
        status=Order.Status.PROCESSING,
        idempotency_key=idempotency_key,
    )
    if not row_insert(order, skip_conflict=True):
        # The orderId or the key is taken (perhaps by a concurrent request that has just committed).
        _refuse_clash(partner=partner, order_id=order.order_id, idempotency_key=idempotency_key)
        raise errors.IdempotencyKeyReused()
    row_insert(Fulfilment(order=order, status=Fulfilment.Status.PENDING, next_attempt_at=now))
    order_enqueue_on_commit(order.pk)
    order_id, product_id = order.order_id, order.product_id
    accepted = ORDERS_ACCEPTED.labels(partner.partner_id)
    transaction.on_commit(lambda: logger.info("order accepted", extra={"order_id": order_id, "product_id": product_id}))
    transaction.on_commit(accepted.inc)  # counted once committed: a rolled-back order was never accepted
    return order


def _plan_offered(data: dict) -> ProductPlan:
    plan = published_plan(data["productId"], data["tenure"])
    if plan is not None:
        return plan
    if published_product(data["productId"]) is None:
        raise errors.UnknownProduct(details={"productId": [f"{data['productId']} is not offered."]})
    raise errors.TenureNotOffered(details={"tenure": [f"{data['tenure']} is not offered for this product."]})


def _renewal_target(*, partner: Partner, data: dict, product_id: str) -> Order | None:
    """The earlier FULFILLED order of the same customer and product that a RENEWAL names."""
    if data["type"] != Order.Type.RENEWAL:
        return None
    renewal_of = Order.objects.filter(
        partner=partner,
        order_id=data["renewalOf"],
        status=Order.Status.FULFILLED,
        customer_id=data["customerId"],
        product_id=product_id,
    ).first()
    if renewal_of is None:
        raise errors.RenewalTargetNotFound()
    return renewal_of


def _refuse_clash(*, partner: Partner, order_id: str, idempotency_key: str) -> None:
    """``409 DUPLICATE_ORDER`` (with its status) when the partner has an order with this orderId;
    ``422 IDEMPOTENCY_KEY_REUSED`` when the key named another order (whose idempotency record has
    expired). Returns when neither."""
    status = Order.objects.filter(partner=partner, order_id=order_id).values_list("status", flat=True).first()
    if status is not None:
        raise errors.DuplicateOrder(details={"orderId": order_id, "status": status})
    if Order.objects.filter(partner=partner, idempotency_key=idempotency_key).exists():
        raise errors.IdempotencyKeyReused()
