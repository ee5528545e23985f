"""The typed values of Zoho Inventory the client hands out and takes in, and their parsers.

``Item``, ``ItemPage``, ``Contact``, ``SalesOrder`` and ``LineItem`` are small frozen dataclasses;
the parsers here turn Zoho's JSON objects (as Zoho documents them) into them, and
``custom_field_entry`` writes a sales order's custom field the way Zoho reads one. Nothing outside
``integrations.zoho`` sees Zoho's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.zoho.errors import ZohoTransientError


@dataclass(frozen=True)
class Item:
    item_id: str
    name: str
    sku: str
    description: str
    rate: Decimal
    status: str
    unit: str | None  # None: the answer did not say (GET /items documents no unit in its rows)


@dataclass(frozen=True)
class ItemPage:
    items: list[Item]
    has_more: bool


@dataclass(frozen=True)
class Contact:
    contact_id: str
    contact_name: str
    email: str


@dataclass(frozen=True)
class SalesOrder:
    salesorder_id: str
    salesorder_number: str
    reference_number: str
    status: str
    customer_id: str = ""
    notes: str = ""
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LineItem:
    item_id: str
    quantity: int
    rate: Decimal
    description: str = ""


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0))
    except InvalidOperation:
        return Decimal(0)


def item_from_zoho(raw: dict) -> Item:
    """An ``item`` object of Zoho's item answers."""
    return Item(
        item_id=str(raw["item_id"]),
        name=str(raw.get("name") or raw.get("item_name") or ""),
        sku=str(raw.get("sku") or ""),
        description=str(raw.get("description") or ""),
        rate=_decimal(raw.get("rate")),
        status=str(raw.get("status") or "active").lower(),
        unit=str(raw["unit"] or "") if "unit" in raw else None,
    )


def sales_order_from_zoho(raw: dict) -> SalesOrder:
    """A ``salesorder`` object of Zoho's answers (one of a list, or the one of a get or create)."""
    # Each custom field is kept under its ``customfield_id`` and its ``label``: the two keys Zoho
    # documents for writing one, so a reader can look it up by whichever the settings name.
    custom: dict[str, str] = {}
    for entry in raw.get("custom_fields") or []:
        if isinstance(entry, dict):
            for key in ("customfield_id", "label"):
                if entry.get(key) not in (None, ""):
                    custom[str(entry[key])] = str(entry.get("value") or "")
    return SalesOrder(
        salesorder_id=str(raw["salesorder_id"]),
        salesorder_number=str(raw.get("salesorder_number") or ""),
        reference_number=str(raw.get("reference_number") or ""),
        status=str(raw.get("status") or "").lower(),
        customer_id=str(raw.get("customer_id") or ""),
        notes=str(raw.get("notes") or ""),
        custom_fields=custom,
    )


def sales_order_from_body(body: dict) -> SalesOrder:
    """The sales order of a get or create answer; an answer without one is transient."""
    # Zoho's documented create answer names the object ``sales_order``, the get answer ``salesorder``.
    raw = body.get("salesorder") or body.get("sales_order")
    if not isinstance(raw, dict) or "salesorder_id" not in raw:
        raise ZohoTransientError("Zoho answered without a sales order")
    return sales_order_from_zoho(raw)


def custom_field_entry(*, value: str, customfield_id: str = "", label: str = "") -> dict:
    """A sales order's custom field as Zoho documents it: by ``customfield_id`` (wins), else ``label``."""
    if customfield_id:
        return {"customfield_id": customfield_id, "value": value}
    if label:
        return {"label": label, "value": value}
    raise ValueError("a custom field needs a customfield_id or a label")
