# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""Two partners whose orderIds and customers collide, provisioned against the Zoho sandbox (a
SIMULATED Zoho) with the real PostgreSQL and Redis: nothing one partner makes in Zoho is adopted for
the other (issue 20, points 1 and 2)."""

from __future__ import annotations

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Fulfilment, Order, ZohoContact
from orders.provisioning import order_provision
from partners.models import Partner
from partners.services import api_key_create
from tests.conftest import place_order
from tests.zoho_fixtures import zoho_sandbox  # noqa: F401
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db

ADA = {
    "customerId": "CUST-1",
    "customerName": "Ada Obi",
    "customerEmail": "ada@example.com",
    "customerPhone": "+2348031234567",
}


@pytest.fixture
def other(db) -> Partner:
    return Partner.objects.create(partner_id="OTHERCO", name="OtherCo", prefix="OTH")


@pytest.fixture
def other_api(other) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(partner=other)[1]}")
    return client


def placed(api, order_id: str, **customer) -> Order:
    place_order(api, orderId=order_id, **{**ADA, **customer})
    return Order.objects.filter(order_id=order_id).latest("pk")  # the one just placed


def provisioned(order: Order) -> Order:
    order_provision(order_pk=order.pk)
    order.refresh_from_db()
    return order


def sandbox_knows(sandbox, contact: ZohoContact) -> None:
    """A contact the code before the deploy made (found by email, named after the customer)."""
    with sandbox.state.lock:
        sandbox.state.contacts[contact.contact_id] = {
            "contact_id": contact.contact_id,
            "contact_name": "Ada Obi",
            "email": "ada@example.com",
            "phone": "",
        }


def fulfilled_event(order: Order) -> dict:
    [log] = WebhookLog.objects.filter(order=order, event_type="ORDER_FULFILLED")
    return log.payload["data"]


@pytest.mark.parametrize("lost", ["before", "after"], ids=["503-before-create", "503-after-create"])
def test_the_same_order_id_of_two_partners_gets_two_sales_orders_through_a_zoho_503(
    api, other_api, partner, other, product, zoho_sandbox, lost
):
    # B (OtherCo) places COLLIDE1 and is fulfilled; A's (T2Mobile's) first create meets a 503: before
    # Zoho made anything, or after (the answer lost).
    theirs = provisioned(placed(other_api, "COLLIDE1"))
    ours = placed(api, "COLLIDE1")
    zoho_sandbox.fail_next(status=503, path_contains="/salesorders", method="POST", after=lost == "after")
    assert provisioned(ours).status == Order.Status.PROCESSING  # the retry is scheduled

    Fulfilment.objects.filter(order=ours).update(next_attempt_at=timezone.now())  # the retry is due
    ours = provisioned(ours)

    assert (ours.status, theirs.status) == (Order.Status.FULFILLED, Order.Status.FULFILLED)
    assert ours.zoho_sales_order_id != theirs.zoho_sales_order_id
    mine, its = zoho_sandbox.sales_order_numbered("T2M-COLLIDE1"), zoho_sandbox.sales_order_numbered("OTH-COLLIDE1")
    assert (mine["salesorder_id"], its["salesorder_id"]) == (ours.zoho_sales_order_id, theirs.zoho_sales_order_id)
    assert len(zoho_sandbox.sales_orders_for("COLLIDE1")) == 2  # reference_number: the orderId, for staff
    # Each sales order carries its own order's activation reference, and each event its own sales order.
    assert ours.activation_reference != theirs.activation_reference
    assert ours.activation_reference in mine["notes"] and theirs.activation_reference in its["notes"]
    assert fulfilled_event(ours)["salesOrderId"] == mine["salesorder_id"]
    assert fulfilled_event(theirs)["salesOrderId"] == its["salesorder_id"]
    assert mine["status"] == its["status"] == "confirmed"


def test_a_refused_number_adopts_only_a_sales_order_with_exactly_that_number(api, partner, product, zoho_sandbox):
    # Someone made "T2M-NUM-10" (a near miss the loose filter returns), and a refusal that is not a
    # taken number (an item Zoho does not know) must fail the order, not adopt the near miss.
    zoho_sandbox.add_sales_order(reference="NUM-10", number="T2M-NUM-10")
    order = placed(api, "NUM-1")
    zoho_sandbox.fail_next(
        status=400, code=1002, message="Item does not exist.", path_contains="/salesorders", method="POST"
    )

    order = provisioned(order)

    assert order.status == Order.Status.FAILED and order.zoho_sales_order_id == ""
    assert "Item does not exist." in Fulfilment.objects.get(order=order).last_error


def test_one_email_shared_by_two_partners_customers_gives_two_contacts(
    api, other_api, partner, other, product, zoho_sandbox
):
    # Same customerId and same email at both partners.
    ours = provisioned(placed(api, "MAIL-1"))
    theirs = provisioned(placed(other_api, "MAIL-2", customerName="Mallory Attacker", customerPhone="+2348099999999"))

    assert (ours.status, theirs.status) == (Order.Status.FULFILLED, Order.Status.FULFILLED)
    [mine] = zoho_sandbox.contacts_named("T2M-CUST-1")
    [its] = zoho_sandbox.contacts_named("OTH-CUST-1")
    assert mine["contact_id"] != its["contact_id"]
    assert mine["phone"] == "+2348031234567" and its["phone"] == "+2348099999999"
    assert zoho_sandbox.sales_order_numbered("T2M-MAIL-1")["customer_id"] == mine["contact_id"]
    assert zoho_sandbox.sales_order_numbered("OTH-MAIL-2")["customer_id"] == its["contact_id"]


def test_a_contact_someone_else_made_with_our_customers_email_is_never_adopted(api, partner, product, zoho_sandbox):
    # Another partner's (or anybody's) contact, with Ada's email, made first.
    with zoho_sandbox.state.lock:
        status, answer = zoho_sandbox.state.answer(
            "POST",
            "/contacts",
            {},
            {
                "contact_name": "Mallory Attacker",
                "contact_persons": [{"email": "ada@example.com", "phone": "+2348099"}],
            },
        )
    mallory = answer["contact"]["contact_id"]

    order = provisioned(placed(api, "MAL-1"))

    assert order.status == Order.Status.FULFILLED
    [ada] = zoho_sandbox.contacts_named("T2M-CUST-1")
    assert zoho_sandbox.sales_order_numbered("T2M-MAL-1")["customer_id"] == ada["contact_id"] != mallory


def test_partner_mode_gives_each_partner_its_own_contact(
    api, other_api, partner, other, product, zoho_sandbox, settings
):
    settings.ZOHO_CUSTOMER_MODE = "partner"
    other.name = partner.name  # even with the same name
    other.save()

    ours = provisioned(placed(api, "PM-1"))
    theirs = provisioned(placed(other_api, "PM-1"))

    [mine] = zoho_sandbox.contacts_named(f"T2M ({partner.name})")
    [its] = zoho_sandbox.contacts_named(f"OTH ({partner.name})")
    assert zoho_sandbox.sales_order_numbered("T2M-PM-1")["customer_id"] == mine["contact_id"]
    assert zoho_sandbox.sales_order_numbered("OTH-PM-1")["customer_id"] == its["contact_id"]
    assert ours.zoho_sales_order_id != theirs.zoho_sales_order_id


def test_an_order_in_flight_at_the_deploy_finds_its_old_sales_order_once_and_never_another_partners(
    api, other_api, partner, other, product, zoho_sandbox
):
    # Before the deploy: both partners' COLLIDE2 had an attempt; the old code made a sales order
    # (reference_number = orderId, Zoho's number) for OtherCo's on its contact, and for ours on ours.
    ours, theirs = placed(api, "COLLIDE2"), placed(other_api, "COLLIDE2")
    our_contact = ZohoContact.objects.create(partner=partner, customer_id="CUST-1", contact_id="4815000000000101")
    their_contact = ZohoContact.objects.create(partner=other, customer_id="CUST-1", contact_id="4815000000000202")
    Fulfilment.objects.filter(order__in=[ours, theirs]).update(attempts=1, last_error="HTTP 503 (before the deploy)")
    migration = __import__("orders.migrations.0008_fulfilment_sales_order_naming", fromlist=["x"])
    migration.in_flight_mark_legacy(django_apps, None)
    migration.in_flight_references_store(django_apps, None)
    assert set(Fulfilment.objects.values_list("sales_order_numbering", flat=True)) == {"legacy"}
    our_reference = Fulfilment.objects.get(order=ours).activation_reference
    their_reference = Fulfilment.objects.get(order=theirs).activation_reference
    their_old = zoho_sandbox.add_sales_order(
        reference="COLLIDE2", customer_id=their_contact.contact_id, notes=f"Activation reference: {their_reference}"
    )
    our_old = zoho_sandbox.add_sales_order(
        reference="COLLIDE2", customer_id=our_contact.contact_id, notes=f"Activation reference: {our_reference}"
    )
    # Zoho knows the cached contacts (the old code made them).
    for contact in (our_contact, their_contact):
        sandbox_knows(zoho_sandbox, contact)

    ours, theirs = provisioned(ours), provisioned(theirs)

    assert ours.zoho_sales_order_id == our_old["salesorder_id"]
    assert theirs.zoho_sales_order_id == their_old["salesorder_id"]
    assert len(zoho_sandbox.sales_orders_for("COLLIDE2")) == 2  # no new one made
    assert ours.activation_reference == our_reference and theirs.activation_reference == their_reference
    # Looked up once: the fulfilments are named the new way from now on.
    assert set(Fulfilment.objects.values_list("sales_order_numbering", flat=True)) == {"ours"}


def test_an_in_flight_order_does_not_adopt_an_old_sales_order_without_its_activation_reference(
    api, partner, product, zoho_sandbox
):
    order = placed(api, "LEG-1")
    contact = ZohoContact.objects.create(partner=partner, customer_id="CUST-1", contact_id="4815000000000303")
    sandbox_knows(zoho_sandbox, contact)
    Fulfilment.objects.filter(order=order).update(attempts=1, sales_order_numbering="legacy")
    stranger = zoho_sandbox.add_sales_order(reference="LEG-1", customer_id=contact.contact_id, notes="another sale")

    order = provisioned(order)

    assert order.status == Order.Status.FULFILLED
    assert order.zoho_sales_order_id not in ("", stranger["salesorder_id"])
    assert zoho_sandbox.sales_order_numbered("T2M-LEG-1")["salesorder_id"] == order.zoho_sales_order_id


def test_the_migration_forgets_a_contact_cached_for_two_partners(partner, other):
    ZohoContact.objects.create(partner=partner, customer_id="CUST-1", contact_id="4815000000000404")
    ZohoContact.objects.create(partner=other, customer_id="CUST-9", contact_id="4815000000000404")
    ZohoContact.objects.create(partner=other, customer_id="CUST-2", contact_id="4815000000000505")
    migration = __import__("orders.migrations.0008_fulfilment_sales_order_naming", fromlist=["x"])

    migration.in_flight_mark_legacy(django_apps, None)

    assert list(ZohoContact.objects.values_list("contact_id", flat=True)) == ["4815000000000505"]


def test_a_nul_and_an_email_in_a_zoho_error_are_cleaned_from_last_error(api, partner, product, zoho_sandbox):
    order = placed(api, "NUL-1")
    zoho_sandbox.fail_next(
        status=500, message="bad\x00thing for ada@example.com +2348031234567", path_contains="/salesorders"
    )

    order = provisioned(order)

    last_error = Fulfilment.objects.get(order=order).last_error
    assert order.status == Order.Status.PROCESSING and "HTTP 500" in last_error
    assert "\x00" not in last_error and "ada@" not in last_error and "1234567" not in last_error
    assert "a***@example.com" in last_error
