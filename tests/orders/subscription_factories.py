"""Orders with fulfilments in a given state, for the tests of subscriptions over time."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from orders.models import Fulfilment, Order, Partner
from tests.zoho_fixtures import MAIL_LITE

_numbers = itertools.count(1)


def subscription_create(
    *,
    partner: Partner,
    expires_at: datetime | None,
    status: str = Fulfilment.Status.ACTIVE,
    order_id: str | None = None,
    renewal_of: Order | None = None,
    activation_reference: str | None = None,
    metadata: dict | None = None,
) -> Fulfilment:
    """A FULFILLED order (NEW, or RENEWAL of ``renewal_of``) and its fulfilment in ``status``."""
    number = next(_numbers)
    order_id = order_id or f"T2M-SUB-{number}"
    activation_reference = activation_reference or (
        renewal_of.activation_reference if renewal_of else f"LIC-{number:06d}"
    )
    order = Order.objects.create(
        partner=partner,
        order_id=order_id,
        type=Order.Type.RENEWAL if renewal_of else Order.Type.NEW,
        renewal_of=renewal_of,
        customer_id=renewal_of.customer_id if renewal_of else f"CUST-{number}",
        customer_name="Ada Obi",
        customer_email="ada@example.com",
        customer_phone="+2348031234567",
        product_id=MAIL_LITE["item_id"],
        tenure="1_MONTH",
        unit_price=Decimal("1500.00"),
        metadata=metadata if metadata is not None else {"campaign": "DEC-PROMO"},
        status=Order.Status.FULFILLED,
        activation_reference=activation_reference,
        idempotency_key=f"key-{order_id}",
    )
    return Fulfilment.objects.create(
        order=order,
        status=status,
        activation_reference=activation_reference,
        starts_at=None,
        expires_at=expires_at,
    )
