"""The Zoho contact a sales order goes on (``ZOHO_CUSTOMER_MODE``), remembered in ``ZohoContact`` so
a returning customer costs no contact calls; and, in ``partner`` mode, the end customer in the notes.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from integrations.zoho.client import ZohoClient
from orders.models import Order, ZohoContact
from partners.models import Partner

logger = logging.getLogger(__name__)


#: The ``customer_id`` of the row that caches the partner's own contact (``ZOHO_CUSTOMER_MODE=partner``);
#: a T2Mobile customerId is never blank, so it cannot collide with one.
PARTNER_CONTACT_CUSTOMER_ID = ""
CUSTOMER_MODE_PER_CUSTOMER = "per_customer"
CUSTOMER_MODE_PARTNER = "partner"
CUSTOMER_MODES = (CUSTOMER_MODE_PER_CUSTOMER, CUSTOMER_MODE_PARTNER)


def _partner_mode() -> bool:
    return settings.ZOHO_CUSTOMER_MODE == CUSTOMER_MODE_PARTNER


def zoho_contact_id(*, order: Order, client: ZohoClient) -> str:
    """The Zoho contact the order's sales order goes on: remembered, else found, else created.

    ``per_customer`` (default): one contact per T2Mobile customer, found by email. Two orders of one
    new customer at once may both miss the table; the email lookup usually finds the first one's
    contact, and the unique constraint keeps one row whichever wins.

    ``partner``: one contact for the partner, found by its name or created, once: the first orders
    after a deploy wait on the partner's row lock so that only one of them talks to Zoho.
    """
    if _partner_mode():
        return _partner_contact_id(order=order, client=client)
    known = ZohoContact.objects.filter(partner_id=order.partner_id, customer_id=order.customer_id).first()
    if known is not None:
        return known.contact_id
    contact = client.contact_find_by_email(email=order.customer_email)
    if contact is None:
        contact = client.contact_create(
            name=order.customer_name, email=order.customer_email, phone=order.customer_phone
        )
    try:
        with transaction.atomic():
            ZohoContact.objects.create(
                partner_id=order.partner_id, customer_id=order.customer_id, contact_id=contact.contact_id
            )
    except IntegrityError:
        return ZohoContact.objects.get(partner_id=order.partner_id, customer_id=order.customer_id).contact_id
    return contact.contact_id


def _partner_contact_id(*, order: Order, client: ZohoClient) -> str:
    known = ZohoContact.objects.filter(partner_id=order.partner_id, customer_id=PARTNER_CONTACT_CUSTOMER_ID).first()
    if known is not None:
        return known.contact_id
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=order.partner_id)
        known = ZohoContact.objects.filter(partner=partner, customer_id=PARTNER_CONTACT_CUSTOMER_ID).first()
        if known is not None:  # another worker made it while this one waited for the lock
            return known.contact_id
        contact = client.contact_find_by_name(name=partner.name) or client.contact_create(name=partner.name)
        ZohoContact.objects.create(
            partner=partner, customer_id=PARTNER_CONTACT_CUSTOMER_ID, contact_id=contact.contact_id
        )
    logger.info("zoho partner contact cached", extra={"contact_id": contact.contact_id})
    return contact.contact_id


def zoho_contact_forget(*, order: Order, contact_id: str) -> None:
    """Zoho no longer knows ``contact_id``: drop the cached row, unless another worker already
    replaced it with a good one."""
    customer_id = PARTNER_CONTACT_CUSTOMER_ID if _partner_mode() else order.customer_id
    ZohoContact.objects.filter(partner_id=order.partner_id, customer_id=customer_id, contact_id=contact_id).delete()


def zoho_customer_notes(*, order: Order) -> str:
    """In ``partner`` mode the sales order's contact is the partner, so the end customer is written
    in the notes; in ``per_customer`` mode the contact already says who it is. (Zoho keeps this;
    our logs never see it.)"""
    if not _partner_mode():
        return ""
    return (
        f"T2Mobile customer: {order.customer_id}\n"
        f"Name: {order.customer_name}\n"
        f"Email: {order.customer_email}\n"
        f"Phone: {order.customer_phone}"
    )
