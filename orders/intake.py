"""Order intake: the one place where an order is created (``order_accept``).

It runs inside the caller's transaction (``orders.idempotency.idempotent_answer`` from the API):
every check runs before the first write, the order's insert takes its own savepoint, and the order,
its fulfilment row and the idempotency record commit together. The provisioning job is queued only
after that commit (``orders.queueing.order_enqueue``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from catalogue.selectors import published_plan, published_product
from orders.models import Fulfilment, Order
from orders.queueing import order_enqueue
from partners.models import Partner
from t2mobile_portal import errors
from t2mobile_portal.logging import order_id_var

logger = logging.getLogger(__name__)


def order_accept(*, partner: Partner, data: dict, idempotency_key: str) -> Order:
    """Create the order of a validated fulfilment request (``FulfilmentRequestSerializer``), with its
    PENDING fulfilment, and queue its provisioning after the commit. Raises the contract's errors
    (duplicate order, unknown product, tenure not offered, renewal target not found) before any write.
    """
    order_id_var.set(data["orderId"])

    clashes = Order.objects.filter(
        Q(order_id=data["orderId"]) | Q(idempotency_key=idempotency_key), partner=partner
    ).values_list("order_id", "status")
    for order_id, status in clashes:
        if order_id == data["orderId"]:
            raise errors.DuplicateOrder(details={"orderId": order_id, "status": status})
    if clashes:
        # The key named another order whose idempotency record has expired.
        raise errors.IdempotencyKeyReused()

    plan = published_plan(data["productId"], data["tenure"])
    if plan is None:
        if published_product(data["productId"]) is None:
            raise errors.UnknownProduct(details={"productId": [f"{data['productId']} is not offered."]})
        raise errors.TenureNotOffered(details={"tenure": [f"{data['tenure']} is not offered for this product."]})
    product = plan.product

    renewal_of = None
    if data["type"] == Order.Type.RENEWAL:
        renewal_of = Order.objects.filter(
            partner=partner,
            order_id=data["renewalOf"],
            status=Order.Status.FULFILLED,
            customer_id=data["customerId"],
            product_id=product.item_id,
        ).first()
        if renewal_of is None:
            raise errors.RenewalTargetNotFound()

    try:
        with transaction.atomic():
            order = Order.objects.create(
                partner=partner,
                order_id=data["orderId"],
                type=data["type"],
                renewal_of=renewal_of,
                customer_id=data["customerId"],
                customer_name=data["customerName"],
                customer_email=data["customerEmail"],
                customer_phone=data["customerPhone"],
                product_id=product.item_id,
                tenure=data["tenure"],
                quantity=data["quantity"],
                unit_price=plan.price,
                currency=settings.CURRENCY,
                metadata=data.get("metadata") or {},
                status=Order.Status.PROCESSING,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # The same orderId committed by a concurrent request under another key.
        existing = Order.objects.filter(partner=partner, order_id=data["orderId"]).first()
        if existing is None:
            raise errors.IdempotencyKeyReused() from None
        raise errors.DuplicateOrder(details={"orderId": existing.order_id, "status": existing.status}) from None
    Fulfilment.objects.create(order=order, status=Fulfilment.Status.PENDING, next_attempt_at=timezone.now())
    order_pk, order_id, product_id = order.pk, order.order_id, order.product_id
    transaction.on_commit(lambda: order_enqueue(order_pk))
    transaction.on_commit(lambda: logger.info("order accepted", extra={"order_id": order_id, "product_id": product_id}))
    return order
