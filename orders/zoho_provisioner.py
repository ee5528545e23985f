"""The ``zoho_sales_order`` provisioner: the licence is the confirmed Zoho sales order itself.

The activation reference is derived, not random: ``ICT-`` + base32 of an HMAC (keyed by
``ACTIVATION_REFERENCE_KEY``, else ``SECRET_KEY``) of the partner and the order id, grouped in fours.
It is derived once, stored on the fulfilment before the sales order is created, and read from there
by every later attempt, so a retry, a crash or a change of key can never hand out two. A renewal
keeps the reference of the subscription it extends. The reference is written on the sales order by
its create (the custom field ``ZOHO_ACTIVATION_FIELD_ID`` or ``ZOHO_ACTIVATION_FIELD``, else the
notes): there is no update call, because Zoho's update requires the whole sales order and a refused
update would fail an order whose sales order exists. Then the sales order's status decides (the
states we meet, docs/zoho.md): a draft is confirmed; a confirmed, open, invoiced, shipped,
fulfilled or closed one is the sale; a void one, one awaiting approval, or one in a status this
code does not know is not, and the order waits (``SalesOrderNotSale``), never FULFILLED and never
FAILED for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.utils import timezone

from catalogue.models import Tenure
from integrations.zoho.client import ZohoClient
from integrations.zoho.errors import ZohoPermanentError
from integrations.zoho.values import SalesOrder, custom_field_entry
from orders.models import Order
from orders.provisioners import (
    Licence,
    SalesOrderAnnotations,
    SalesOrderAwaitingApproval,
    SalesOrderStatusUnknown,
    SalesOrderVoid,
)

REFERENCE_PREFIX = "ICT-"

#: Statuses of a sales order that is a sale: confirmed, and every later step of Zoho's cycle.
SOLD = frozenset(
    {
        "confirmed",
        "open",
        "invoiced",
        "partially_invoiced",
        "packed",
        "partially_packed",
        "shipped",
        "partially_shipped",
        "delivered",
        "fulfilled",
        "closed",
    }
)
DRAFT = frozenset({"", "draft"})
AWAITING_APPROVAL = frozenset({"pending_approval", "approved"})
VOID = "void"


def activation_reference_derive(*, partner_id: str, order_id: str) -> str:
    key = (settings.ACTIVATION_REFERENCE_KEY or settings.SECRET_KEY).encode()
    digest = hmac.new(key, f"{partner_id}:{order_id}".encode(), hashlib.sha256).digest()
    code = base64.b32encode(digest[:10]).decode()  # 80 bits → 16 characters, no padding
    return REFERENCE_PREFIX + "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def activation_reference_for(order: Order) -> str:
    """The order's reference: as stored on its fulfilment (``order.fulfilment``, which the attempt
    has read), else derived. A renewal keeps the reference of the subscription it renews; a NEW
    order derives its own. Provisioning stores it before the sales order is created
    (``SalesOrderAnnotations.activation_reference``)."""
    if order.fulfilment.activation_reference:
        return order.fulfilment.activation_reference
    renewed = order.renewal_of.subscription if order.renewal_of_id and order.renewal_of.subscription_id else None
    if renewed is not None:
        return renewed.activation_reference
    return activation_reference_derive(partner_id=order.partner.partner_id, order_id=order.order_id)


def _described(sales_order: SalesOrder) -> str:
    return f"sales order {sales_order.salesorder_number or sales_order.salesorder_id}, status {sales_order.status}"


def _notes(reference: str) -> str:
    return f"Activation reference: {reference}"


class ZohoSalesOrderProvisioner:
    def __init__(self, *, client: ZohoClient):
        self.client = client

    def sales_order_annotations(self, *, order: Order) -> SalesOrderAnnotations:
        reference = activation_reference_for(order)
        field_id, label = settings.ZOHO_ACTIVATION_FIELD_ID, settings.ZOHO_ACTIVATION_FIELD
        if field_id or label:
            return SalesOrderAnnotations(
                activation_reference=reference,
                custom_fields=[custom_field_entry(value=reference, customfield_id=field_id, label=label)],
            )
        return SalesOrderAnnotations(activation_reference=reference, notes=_notes(reference))

    def provision(self, *, order: Order, sales_order: SalesOrder) -> Licence:
        reference = activation_reference_for(order)
        if sales_order.status in DRAFT:
            self._confirm(sales_order)
        else:
            self._check_sold(sales_order)
        starts_at = timezone.now()
        return Licence(
            activation_reference=reference,
            starts_at=starts_at,
            expires_at=timezone.localtime(starts_at) + relativedelta(months=Tenure.months_of(order.tenure)),
        )

    def _confirm(self, sales_order: SalesOrder) -> None:
        """Confirm a draft. An organisation with approvals on refuses that for a sales order awaiting
        approval: the sales order is read again, and the refusal stands only when it is not."""
        try:
            self.client.sales_order_confirm(salesorder_id=sales_order.salesorder_id)
        except ZohoPermanentError:
            current = self.client.sales_order_get(salesorder_id=sales_order.salesorder_id)
            if current.status in DRAFT:
                raise
            self._check_sold(current)

    @staticmethod
    def _check_sold(sales_order: SalesOrder) -> None:
        if sales_order.status in SOLD:
            return
        if sales_order.status in AWAITING_APPROVAL:
            raise SalesOrderAwaitingApproval(f"awaiting approval in Zoho ({_described(sales_order)})")
        if sales_order.status == VOID:
            raise SalesOrderVoid(
                f"the Zoho {_described(sales_order)}, is void but the order is not cancelled: staff must "
                "decide (un-void it in Zoho, or fail the order)"
            )
        raise SalesOrderStatusUnknown(f"the Zoho {_described(sales_order)}, is not known to be a sale")
