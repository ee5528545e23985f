# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""Zoho calls per order, in both ``ZOHO_CUSTOMER_MODE``s, and what happens when Zoho no longer knows
a cached contact: run in-process against the Zoho sandbox (a SIMULATED Zoho) and ``responses``,
with the real PostgreSQL and Redis."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import responses

from integrations.zoho.sandbox import ZohoSandbox
from orders.models import Fulfilment, Order, ZohoContact
from orders.provisioning import order_provision
from tests.conftest import place_order
from tests.factories import ZohoContactFactory
from tests.zoho_fixtures import API_BASE, zoho_sandbox, zoho_settings  # noqa: F401

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def logged(caplog) -> str:
    """Every record logged, with its message, arguments and extra fields."""
    return "\n".join(f"{record.getMessage()} {json.dumps(record.__dict__, default=str)}" for record in caplog.records)


def place(api, order_id: str, customer: int) -> Order:
    place_order(
        api,
        orderId=order_id,
        customerId=f"CUST-{customer:04d}",
        customerName=f"Customer {customer}",
        customerEmail=f"customer{customer}@example.com",
        customerPhone=f"+23480312{customer:05d}",
    )
    return Order.objects.get(order_id=order_id)


def provisioned_with_calls(sandbox: ZohoSandbox, order: Order) -> tuple[Order, dict[str, int]]:
    """Provision the order; the Zoho API calls the sandbox answered meanwhile, by endpoint."""
    before = dict(sandbox.state.counts)
    order_provision(order_pk=order.pk)
    after = dict(sandbox.state.counts)
    calls = {name: after[name] - before.get(name, 0) for name in after if name not in ("api", "token")}
    order.refresh_from_db()
    return order, {name: count for name, count in calls.items() if count and "/" in name}


def test_per_customer_mode_costs_four_calls_for_a_new_customer_and_two_for_a_returning_one(api, product, zoho_sandbox):
    new, new_calls = provisioned_with_calls(zoho_sandbox, place(api, "T2M-PC-1", customer=1))
    again, again_calls = provisioned_with_calls(zoho_sandbox, place(api, "T2M-PC-2", customer=1))

    assert (new.status, again.status) == (Order.Status.FULFILLED, Order.Status.FULFILLED)
    assert new_calls == {
        "GET /contacts": 1,
        "POST /contacts": 1,
        "POST /salesorders": 1,
        "POST /salesorders/{id}/status/confirmed": 1,
    }
    assert again_calls == {"POST /salesorders": 1, "POST /salesorders/{id}/status/confirmed": 1}
    assert zoho_sandbox.state.snapshot()["contacts"] == 1


def test_partner_mode_puts_every_order_on_one_contact_for_two_calls_with_the_customer_in_the_notes(
    api, product, zoho_sandbox, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    settings.ZOHO_CUSTOMER_MODE = "partner"
    first, first_calls = provisioned_with_calls(zoho_sandbox, place(api, "T2M-PM-1", customer=1))
    second, second_calls = provisioned_with_calls(zoho_sandbox, place(api, "T2M-PM-2", customer=2))
    third, third_calls = provisioned_with_calls(zoho_sandbox, place(api, "T2M-PM-3", customer=3))

    assert {first.status, second.status, third.status} == {Order.Status.FULFILLED}
    # The partner's contact is found (by name) or created once, then cached for every customer.
    assert first_calls["GET /contacts"] == 1 and first_calls["POST /contacts"] == 1
    assert second_calls == third_calls == {"POST /salesorders": 1, "POST /salesorders/{id}/status/confirmed": 1}
    [contact] = zoho_sandbox.state.contacts.values()
    assert contact["contact_name"] == "T2M (T2Mobile)"  # named after the partner, by its prefix
    [sales_order] = zoho_sandbox.sales_orders_for("T2M-PM-2")
    assert sales_order["customer_id"] == contact["contact_id"]
    for detail in ("CUST-0002", "Customer 2", "customer2@example.com", "+2348031200002", second.activation_reference):
        assert detail in sales_order["notes"]
    text = logged(caplog)
    for customer in (1, 2, 3):
        assert f"customer{customer}@example.com" not in text and f"+23480312{customer:05d}" not in text


def test_per_customer_mode_logs_no_customer_email_or_phone(api, product, zoho_sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    provisioned_with_calls(zoho_sandbox, place(api, "T2M-PII-1", customer=7))

    text = logged(caplog)
    assert "order fulfilled" in text
    assert "customer7@example.com" not in text and "+2348031200007" not in text


def test_a_contact_deleted_in_zoho_is_found_or_created_again_at_once_and_the_order_is_fulfilled(
    api, product, zoho_sandbox
):
    provisioned_with_calls(zoho_sandbox, place(api, "T2M-GONE-1", customer=5))
    stale = ZohoContact.objects.get(customer_id="CUST-0005").contact_id
    assert zoho_sandbox.delete_contact(stale)

    order, calls = provisioned_with_calls(zoho_sandbox, place(api, "T2M-GONE-2", customer=5))

    assert order.status == Order.Status.FULFILLED
    assert Fulfilment.objects.get(order=order).attempts == 1
    fresh = ZohoContact.objects.get(customer_id="CUST-0005").contact_id
    assert fresh != stale
    [sales_order] = zoho_sandbox.sales_orders_for("T2M-GONE-2")
    assert sales_order["customer_id"] == fresh
    # The refused create, the search and the create of the contact, the create again, the confirm.
    assert calls == {
        "POST /salesorders": 2,
        "GET /contacts": 1,
        "POST /contacts": 1,
        "POST /salesorders/{id}/status/confirmed": 1,
    }


def test_after_a_sandbox_restart_the_cached_contacts_are_unknown_and_the_next_order_is_fulfilled(
    api, product, zoho_sandbox, settings
):
    provisioned_with_calls(zoho_sandbox, place(api, "T2M-RST-1", customer=6))
    # A second `make run`: db.sqlite3 (here PostgreSQL) keeps the contact, the new sandbox does not.
    restarted = ZohoSandbox(port=0, rate_limit=100000, max_inflight=100).start()
    try:
        settings.ZOHO_ACCOUNTS_URL, settings.ZOHO_API_BASE = restarted.accounts_url, restarted.api_base
        order, _ = provisioned_with_calls(restarted, place(api, "T2M-RST-2", customer=6))
    finally:
        restarted.stop()

    assert order.status == Order.Status.FULFILLED
    [sales_order] = restarted.sales_orders_for("T2M-RST-2")
    assert sales_order["customer_id"] in restarted.state.contacts


def test_a_partner_contact_deleted_in_zoho_is_replaced_once(api, product, zoho_sandbox, settings):
    settings.ZOHO_CUSTOMER_MODE = "partner"
    provisioned_with_calls(zoho_sandbox, place(api, "T2M-PGONE-1", customer=1))
    [stale] = list(zoho_sandbox.state.contacts)
    zoho_sandbox.delete_contact(stale)

    order, calls = provisioned_with_calls(zoho_sandbox, place(api, "T2M-PGONE-2", customer=2))

    assert order.status == Order.Status.FULFILLED
    assert calls["POST /contacts"] == 1 and calls["POST /salesorders"] == 2
    assert ZohoContact.objects.get(customer_id="").contact_id != stale


def test_a_crash_retry_is_refused_its_number_and_finds_its_sales_order_on_page_3(api, product, zoho_sandbox):
    # 450 sales orders of others, whose numbers contain this order's (the filters match loosely).
    for i in range(450):
        zoho_sandbox.add_sales_order(reference=f"T2M-CR-1{i}", number=f"T2M-T2M-CR-1{i}")
    order = place(api, "T2M-CR-1", customer=9)
    # Made by an attempt that then died, under the order's number.
    own = zoho_sandbox.add_sales_order(reference="T2M-CR-1", number="T2M-T2M-CR-1")
    Fulfilment.objects.filter(order=order).update(attempts=1, last_error="the worker was lost mid-attempt")

    order, calls = provisioned_with_calls(zoho_sandbox, order)

    assert order.status == Order.Status.FULFILLED and order.zoho_sales_order_id == own["salesorder_id"]
    assert len(zoho_sandbox.sales_orders_for("T2M-CR-1")) == 1
    # Zoho refuses the number it has; the look-up reads pages 1-3; it was confirmed already.
    assert calls == {"POST /contacts": 1, "GET /contacts": 1, "POST /salesorders": 1, "GET /salesorders": 3}


def test_auto_numbering_a_crash_retry_finds_its_sales_order_by_exact_reference_on_its_contact(
    api, product, zoho_sandbox, settings
):
    settings.ZOHO_SALES_ORDER_NUMBERING = "auto"
    first = provisioned_with_calls(zoho_sandbox, place(api, "T2M-AU-0", customer=9))[0]
    contact_id = ZohoContact.objects.get(customer_id="CUST-0009").contact_id
    # Near misses: a longer reference, and the exact reference on somebody else's contact.
    zoho_sandbox.add_sales_order(reference="T2M-T2M-AU-10", customer_id=contact_id)
    zoho_sandbox.add_sales_order(reference="T2M-T2M-AU-1", customer_id="4815000000000001")
    order = place(api, "T2M-AU-1", customer=9)
    own = zoho_sandbox.add_sales_order(reference="T2M-T2M-AU-1", customer_id=contact_id)
    Fulfilment.objects.filter(order=order).update(attempts=1, last_error="the worker was lost mid-attempt")

    order, calls = provisioned_with_calls(zoho_sandbox, order)

    assert first.status == Order.Status.FULFILLED
    assert order.status == Order.Status.FULFILLED and order.zoho_sales_order_id == own["salesorder_id"]
    assert calls == {"GET /salesorders": 1}
    assert zoho_sandbox.sales_orders_for("T2M-T2M-AU-0")[0]["salesorder_number"].startswith("SO-")  # Zoho's number


# --- The same with ``responses``: Zoho's documented bodies -----------------------------------------


def token_answered(rsps) -> None:
    """Zoho Accounts' documented token answer, for the data centre of the test settings."""
    rsps.post(
        "https://accounts.zoho.test/oauth/v2/token",
        json={"access_token": "1000.a.b", "api_domain": "https://www.zohoapis.test", "expires_in": 3600},
    )


def sales_order_answered(rsps, *, salesorder_id: str, reference: str, customer_id: str):
    """The documented answers to the create (201, ``sales_order``) and the confirm; their stubs."""
    created = {
        "salesorder_id": salesorder_id,
        "salesorder_number": "SO-" + salesorder_id[-5:],
        "reference_number": reference,
        "customer_id": customer_id,
        "status": "draft",
    }
    accepted = rsps.post(
        f"{API_BASE}/salesorders",
        status=201,
        json={"code": 0, "message": "Sales Order has been created.", "sales_order": created},
    )
    confirmed = rsps.post(
        f"{API_BASE}/salesorders/{salesorder_id}/status/confirmed",
        json={"code": 0, "message": "Sales Order has been marked as confirmed."},
    )
    return accepted, confirmed


def test_customer_does_not_exist_on_create_is_answered_by_a_fresh_contact_not_a_failed_order(
    api, product, zoho_settings
):
    order = place(api, "T2M-RSP-1", customer=4)
    ZohoContactFactory(partner=order.partner, customer_id="CUST-0004", contact_id="4815000000011111")
    with responses.RequestsMock() as rsps:
        token_answered(rsps)
        refused = rsps.post(
            f"{API_BASE}/salesorders", status=400, json={"code": 1002, "message": "Customer does not exist."}
        )
        search = rsps.get(
            f"{API_BASE}/contacts",
            json={"code": 0, "message": "success", "contacts": [], "page_context": {"page": 1, "has_more_page": False}},
        )
        made = rsps.post(
            f"{API_BASE}/contacts",
            status=201,
            json={
                "code": 0,
                "message": "The contact has been added.",
                "contact": {"contact_id": "4815000000022222", "contact_name": "Customer 4"},
            },
        )
        accepted, confirmed = sales_order_answered(
            rsps, salesorder_id="4815000000200001", reference="T2M-RSP-1", customer_id="4815000000022222"
        )

        order_provision(order_pk=order.pk)

        zoho_calls = [call for call in rsps.calls if "/oauth/" not in call.request.url]

    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    assert ZohoContact.objects.get(customer_id="CUST-0004").contact_id == "4815000000022222"
    assert [refused.call_count, search.call_count, made.call_count, accepted.call_count] == [1, 1, 1, 1]
    assert confirmed.call_count == 1 and len(zoho_calls) == 5
    assert json.loads(zoho_calls[0].request.body)["customer_id"] == "4815000000011111"
    assert json.loads(zoho_calls[3].request.body)["customer_id"] == "4815000000022222"


def test_a_returning_customers_order_costs_two_calls_against_zohos_documented_answers(api, product, zoho_settings):
    order = place(api, "T2M-RSP-2", customer=3)
    ZohoContactFactory(partner=order.partner, customer_id="CUST-0003", contact_id="4815000000033333")
    with responses.RequestsMock() as rsps:
        token_answered(rsps)
        sales_order_answered(
            rsps, salesorder_id="4815000000200002", reference="T2M-RSP-2", customer_id="4815000000033333"
        )

        order_provision(order_pk=order.pk)

        zoho_calls = [call for call in rsps.calls if "/oauth/" not in call.request.url]

    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    assert len(zoho_calls) == 2
    assert "Activation reference: " + order.activation_reference in json.loads(zoho_calls[0].request.body)["notes"]


# --- The setting is checked when the process starts -------------------------------------------------


def test_an_unknown_customer_mode_stops_start_up_with_an_error_naming_the_setting():
    env = {**os.environ, "ZOHO_CUSTOMER_MODE": "per-customer", "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings"}

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    assert "ZOHO_CUSTOMER_MODE must be per_customer or partner" in result.stderr
