"""The licence provisioner interface, chosen per product (``Product.provisioner``).

The order flow creates and finds the Zoho sales order; a provisioner turns that sales order into a
licence. The default, ``zoho_sales_order``, derives a stable activation reference and records it on
the Zoho sales order; a vendor's own licensing API can be added here later without touching the
order flow in ``orders/provisioning.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from django.utils.module_loading import import_string

from catalogue.models import Product
from integrations.zoho.errors import ZohoWaitError
from integrations.zoho.values import SalesOrder as SalesOrderRef
from orders.models import Order

DEFAULT_PROVISIONER = "zoho_sales_order"
PROVISIONERS = {
    "zoho_sales_order": "orders.zoho_provisioner.ZohoSalesOrderProvisioner",
}


@dataclass(frozen=True)
class Licence:
    activation_reference: str
    starts_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class SalesOrderAnnotations:
    """What the provisioner wants written on the sales order by its create (there is no update), and
    the activation reference the licence will carry: provisioning stores it on the fulfilment before
    the create, and every later attempt reads it from there."""

    activation_reference: str = ""
    notes: str = ""
    custom_fields: list[dict] = field(default_factory=list)


class Provisioner(Protocol):
    def sales_order_annotations(self, *, order: Order) -> SalesOrderAnnotations: ...

    def provision(self, *, order: Order, sales_order: SalesOrderRef) -> Licence:
        """Must be idempotent: called again for the same order it returns the same licence."""
        ...


class UnknownProvisioner(Exception):
    pass


class SalesOrderNotSale(ZohoWaitError):
    """The order's sales order exists but is not (yet) a sale (zoho.md, "Sales order states we
    meet"): the order waits in PROCESSING, without using up its retries, and ``last_error`` (whose
    first word is the class name) says why. A provisioner raises one of the kinds below."""

    wait_seconds = 600.0

    def __init__(self, message: str):
        super().__init__(message, retry_after=self.wait_seconds)


class SalesOrderVoid(SalesOrderNotSale):
    """Voided in Zoho while the order is not cancelled: staff decide (an alert); checked again hourly."""

    wait_seconds = 3600.0


class SalesOrderAwaitingApproval(SalesOrderNotSale):
    """An organisation with approvals on: the sales order waits for a person in Zoho to approve it."""


class SalesOrderStatusUnknown(SalesOrderNotSale):
    """A status this code does not know: never taken for a sale; staff see it in ``last_error``."""


def provisioner_for(*, order: Order, client) -> Provisioner:
    name = Product.objects.filter(item_id=order.product_id).values_list("provisioner", flat=True).first()
    path = PROVISIONERS.get(name or DEFAULT_PROVISIONER)
    if path is None:
        raise UnknownProvisioner(f"no provisioner named {name!r}")
    return import_string(path)(client=client)
