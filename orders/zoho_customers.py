"""The Zoho contact a sales order goes on (``ZOHO_CUSTOMER_MODE``), remembered in ``ZohoContact`` so
a returning customer costs no contact calls; and, in ``partner`` mode, the end customer in the notes.

A customerId is unique only within its partner, and an email says nothing of whose customer it is,
so every contact we make is named after the partner: ``<prefix>-<customerId>`` for a customer (the
customer's own name is on its contact person), ``<prefix> (<partner name>)`` for a partner's own
contact. A contact is found only by that exact name, never by email: one email shared by two
partners' customers gives two contacts, and a contact somebody else made with our customer's email
is never adopted.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from integrations.zoho.client import ZohoClient
from integrations.zoho.errors import ZohoPermanentError
from integrations.zoho.values import Contact
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


def contact_name_of_customer(*, prefix: str, customer_id: str) -> str:
    return f"{prefix}-{customer_id}"


def contact_name_of_partner(*, partner: Partner) -> str:
    return f"{partner.prefix} ({partner.name})"


def zoho_contact_id(*, order: Order, client: ZohoClient) -> str:
    """The Zoho contact the order's sales order goes on: remembered, else found by its name, else
    created.

    ``per_customer`` (default): one contact per customer of each partner. Two orders of one new
    customer at once may both miss the table; the name lookup usually finds the first one's contact,
    and the unique constraint keeps one row whichever wins.

    ``partner``: one contact for each partner, found by its name or created, once: the first orders
    after a deploy wait on the partner's row lock so that only one of them talks to Zoho.
    """
    if _partner_mode():
        return _partner_contact_id(order=order, client=client)
    known = ZohoContact.objects.filter(partner_id=order.partner_id, customer_id=order.customer_id).first()
    if known is not None:
        return known.contact_id
    name = contact_name_of_customer(prefix=order.partner.prefix, customer_id=order.customer_id)
    contact = _contact_found_or_made(
        client=client,
        name=name,
        person_name=order.customer_name,
        email=order.customer_email,
        phone=order.customer_phone,
    )
    try:
        with transaction.atomic():
            ZohoContact.objects.create(
                partner_id=order.partner_id, customer_id=order.customer_id, contact_id=contact.contact_id
            )
    except IntegrityError:
        return ZohoContact.objects.get(partner_id=order.partner_id, customer_id=order.customer_id).contact_id
    return contact.contact_id


def _contact_found_or_made(*, client: ZohoClient, name: str, **person) -> Contact:
    """The contact named exactly ``name``, else a new one. A create Zoho refuses (an organisation that
    keeps contact names unique, where another worker made it a moment ago) looks it up once more."""
    found = client.contact_find_by_name(name=name)
    if found is not None:
        return found
    try:
        return client.contact_create(name=name, **person)
    except ZohoPermanentError:
        found = client.contact_find_by_name(name=name)
        if found is None:
            raise
        return found


def _partner_contact_id(*, order: Order, client: ZohoClient) -> str:
    known = ZohoContact.objects.filter(partner_id=order.partner_id, customer_id=PARTNER_CONTACT_CUSTOMER_ID).first()
    if known is not None:
        return known.contact_id
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=order.partner_id)
        known = ZohoContact.objects.filter(partner=partner, customer_id=PARTNER_CONTACT_CUSTOMER_ID).first()
        if known is not None:  # another worker made it while this one waited for the lock
            return known.contact_id
        contact = _contact_found_or_made(client=client, name=contact_name_of_partner(partner=partner))
        ZohoContact.objects.create(
            partner=partner, customer_id=PARTNER_CONTACT_CUSTOMER_ID, contact_id=contact.contact_id
        )
    logger.info("zoho partner contact cached", extra={"contact_id": contact.contact_id})
    return contact.contact_id


def _cached_contacts(*, order: Order):
    """The ``ZohoContact`` row(s) that cache the contact of the order's sales order, in either mode."""
    customer_id = PARTNER_CONTACT_CUSTOMER_ID if _partner_mode() else order.customer_id
    return ZohoContact.objects.filter(partner_id=order.partner_id, customer_id=customer_id)


def zoho_contact_cached(*, order: Order) -> str | None:
    """The contact id remembered for the order's sales order, without asking Zoho; None if none is."""
    return _cached_contacts(order=order).values_list("contact_id", flat=True).first()


def zoho_contact_forget(*, order: Order, contact_id: str) -> None:
    """Zoho no longer knows ``contact_id``: drop the cached row, unless another worker already
    replaced it with a good one."""
    _cached_contacts(order=order).filter(contact_id=contact_id).delete()


def zoho_customer_notes(*, order: Order) -> str:
    """In ``partner`` mode the sales order's contact is the partner, so the end customer is written
    in the notes; in ``per_customer`` mode the contact already says who it is. (Zoho keeps this;
    our logs never see it.)"""
    if not _partner_mode():
        return ""
    return (
        f"{order.partner.name} customer: {order.customer_id}\n"
        f"Name: {order.customer_name}\n"
        f"Email: {order.customer_email}\n"
        f"Phone: {order.customer_phone}"
    )
