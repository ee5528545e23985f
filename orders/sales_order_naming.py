"""How an order's Zoho sales order is named, and how a sales order found in Zoho is known to be ours.

An ``orderId`` is unique only within its partner, so the sales order is named by both:
``<partner prefix>-<orderId>`` (zoho.md, "Calls and shapes").

- ``ours`` (``ZOHO_SALES_ORDER_NUMBERING``, the default): that is the ``salesorder_number``, sent with
  ``ignore_auto_number_generation=true``. Zoho keeps sales order numbers unique, so it refuses a
  second create for the same order; a refusal, or a create whose answer was lost, is followed by a
  look-up that adopts a sales order only when its number is exactly ours.
- ``auto``: Zoho numbers the sales order; ``reference_number`` carries the name, and a sales order is
  adopted only when its reference is exactly ours and it is on this order's contact.
- ``legacy``: the order was in flight when this naming was deployed, so its sales order, if an
  earlier attempt made one, has ``reference_number`` = orderId. It is looked up once by that
  reference on the order's cached contact, and adopted only when it carries this order's activation
  reference (derived from the partner and the order, so never another partner's); then the order is
  named the current way.

The naming is fixed on the fulfilment before the first create, so neither a change of the setting
nor of the prefix can give an order a second sales order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from integrations.zoho.client import ZohoClient
from integrations.zoho.values import SalesOrder
from orders.models import Fulfilment, Order
from orders.provisioners import SalesOrderAnnotations
from orders.zoho_customers import zoho_contact_cached

logger = logging.getLogger(__name__)

Numbering = Fulfilment.Numbering


@dataclass(frozen=True)
class SalesOrderNaming:
    numbering: str
    name: str  # <prefix>-<orderId>: the number (ours) or the reference (auto)


def sales_order_name_of(*, order: Order) -> str:
    return f"{order.partner.prefix}-{order.order_id}"


def sales_order_naming_new(*, order: Order) -> SalesOrderNaming:
    """How a sales order not yet named is named now: the setting's numbering, the partner's prefix."""
    return SalesOrderNaming(settings.ZOHO_SALES_ORDER_NUMBERING, sales_order_name_of(order=order))


def sales_order_naming_fix(*, fulfilment: Fulfilment, order: Order) -> SalesOrderNaming:
    """The fulfilment's naming, written now if it has none yet (or had the legacy one)."""
    if fulfilment.sales_order_numbering and fulfilment.sales_order_numbering != Numbering.LEGACY:
        return SalesOrderNaming(fulfilment.sales_order_numbering, fulfilment.sales_order_name)
    naming = sales_order_naming_new(order=order)
    Fulfilment.objects.filter(pk=fulfilment.pk).update(
        sales_order_numbering=naming.numbering, sales_order_name=naming.name
    )
    fulfilment.sales_order_numbering, fulfilment.sales_order_name = naming.numbering, naming.name
    return naming


def legacy_sales_order_find(
    *, order: Order, client: ZohoClient, annotations: SalesOrderAnnotations
) -> SalesOrder | None:
    """The sales order an attempt before the deploy made for this order (reference = orderId), when
    it is on the order's cached contact and carries what the provisioner writes on this order's
    sales order (the activation reference, in the notes or a custom field); else None."""
    contact_id = zoho_contact_cached(order=order)
    if not contact_id:
        return None  # the old code made the contact before any sales order: none was made
    found = client.sales_order_find_by_reference(reference=order.order_id, customer_id=contact_id)
    if found is None:
        return None
    # A list row need not carry notes and custom fields: the sales order itself does.
    full = client.sales_order_get(salesorder_id=found.salesorder_id)
    written = [entry["value"] for entry in annotations.custom_fields] + (
        [annotations.notes] if annotations.notes else []
    )
    if written and all(value in full.notes or value in full.custom_fields.values() for value in written):
        logger.info(
            "provisioning: a sales order made before the naming change adopted", extra={"order_id": order.order_id}
        )
        return full
    logger.warning(
        "provisioning: a sales order with this orderId on this contact is not this order's; not adopted",
        extra=_order(order),
    )
    return None


def _order(order: Order) -> dict:
    return {"order_id": order.order_id}
