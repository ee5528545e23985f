"""The client calls Zoho as its documentation describes them (Inventory API v1: sales orders,
contacts, errors, pagination; Zoho Accounts: refresh access token), against ``responses`` stubs
shaped like the documented answers."""

from __future__ import annotations

import json
import logging
from datetime import date
from decimal import Decimal

import pytest
import responses
from django.core.cache import cache
from responses import matchers

from integrations.zoho import auth as auth_module
from integrations.zoho.client import ZohoClient
from integrations.zoho.errors import ZohoCustomerUnknownError, ZohoPermanentError
from integrations.zoho.values import LineItem, custom_field_entry
from t2mobile_portal.health import health_report
from tests.zoho_fixtures import ACCOUNTS_URL, API_BASE, MAIL_LITE

TOKEN_URL = f"{ACCOUNTS_URL}/oauth/v2/token"


def token_body(api_domain: str) -> dict:
    return {"access_token": "1000.8f3c.7d1e", "api_domain": api_domain, "token_type": "Bearer", "expires_in": 3600}


pytestmark = pytest.mark.django_db


def sales_order(number: int, reference: str) -> dict:
    return {
        "salesorder_id": f"48150000001{number:05d}",
        "salesorder_number": f"SO-{number:05d}",
        "reference_number": reference,
        "customer_id": "4815000000099001",
        "status": "confirmed",
    }


def page_body(rows: list[dict], *, page: int, has_more: bool) -> dict:
    return {
        "code": 0,
        "message": "success",
        "salesorders": rows,
        "page_context": {"page": page, "per_page": 200, "has_more_page": has_more},
    }


def test_the_lookup_by_reference_follows_has_more_page_to_the_exact_match_on_page_3(zoho_settings):
    # Pages 1 and 2 hold only near misses (the filter matches loosely); the order's own is on page 3.
    near_misses = [sales_order(i, f"T2M77{i}") for i in range(200)]
    more_misses = [sales_order(200 + i, f"XT2M77-{i}") for i in range(200)]
    own = sales_order(999, "T2M77")
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body("https://www.zohoapis.test"))
        pages = [
            rsps.get(
                f"{API_BASE}/salesorders",
                json=body,
                match=[matchers.query_param_matcher({"page": str(n), "per_page": "200"}, strict_match=False)],
            )
            for n, body in (
                (1, page_body(near_misses, page=1, has_more=True)),
                (2, page_body(more_misses, page=2, has_more=True)),
                (3, page_body([sales_order(998, "T2M770"), own], page=3, has_more=False)),
            )
        ]

        found = ZohoClient.from_settings().sales_order_find_by_reference(reference="T2M77")

    assert found is not None and found.salesorder_id == own["salesorder_id"]
    assert [page.call_count for page in pages] == [1, 1, 1]
    assert "reference_number=T2M77" in pages[2].calls[0].request.url


def test_the_lookup_reads_every_page_before_saying_there_is_none(zoho_settings):
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body("https://www.zohoapis.test"))
        first = rsps.get(
            f"{API_BASE}/salesorders",
            json=page_body([sales_order(1, "T2M5-R1")], page=1, has_more=True),
            match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)],
        )
        last = rsps.get(
            f"{API_BASE}/salesorders",
            json=page_body([sales_order(2, "T2M50")], page=2, has_more=False),
            match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)],
        )

        assert ZohoClient.from_settings().sales_order_find_by_reference(reference="T2M5") is None

    assert (first.call_count, last.call_count) == (1, 1)


@pytest.mark.parametrize(
    ("field_id", "label", "expected"),
    [
        ("460000000639127", "", {"customfield_id": "460000000639127", "value": "ICT-1"}),
        ("460000000639127", "Activation reference", {"customfield_id": "460000000639127", "value": "ICT-1"}),
        ("", "Activation reference", {"label": "Activation reference", "value": "ICT-1"}),
    ],
)
def test_a_custom_field_is_addressed_by_customfield_id_which_wins_else_by_label(field_id, label, expected):
    assert custom_field_entry(value="ICT-1", customfield_id=field_id, label=label) == expected


def create(zoho: ZohoClient, **overrides):
    arguments = {
        "customer_id": "4815000000099001",
        "reference": "T2M1",
        "on": date(2026, 12, 2),
        "line_items": [LineItem(MAIL_LITE["item_id"], 1, Decimal("1500.00"), "12 months")],
        "notes": "",
        "custom_fields": [{"customfield_id": "460000000639127", "value": "ICT-1"}],
    }
    arguments.update(overrides)
    return zoho.sales_order_create(**arguments)


def test_the_create_carries_the_custom_field_and_reads_the_documented_sales_order_object(zoho_settings):
    created = {**sales_order(1, "T2M1"), "status": "draft"}
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body("https://www.zohoapis.test"))
        post = rsps.post(
            f"{API_BASE}/salesorders",
            status=201,
            json={"code": 0, "message": "Sales Order has been created.", "sales_order": created},
        )

        result = create(ZohoClient.from_settings())

    sent = json.loads(post.calls[0].request.body)
    assert sent["custom_fields"] == [{"customfield_id": "460000000639127", "value": "ICT-1"}]
    assert result.salesorder_id == created["salesorder_id"] and result.status == "draft"


def test_customer_does_not_exist_on_create_is_its_own_error_and_item_does_not_exist_is_not(zoho_settings):
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body("https://www.zohoapis.test"))
        rsps.post(f"{API_BASE}/salesorders", status=400, json={"code": 1002, "message": "Customer does not exist."})
        rsps.post(f"{API_BASE}/salesorders", status=400, json={"code": 1002, "message": "Item does not exist."})
        zoho = ZohoClient.from_settings()

        with pytest.raises(ZohoCustomerUnknownError) as customer:
            create(zoho)
        with pytest.raises(ZohoPermanentError) as item:
            create(zoho)

    assert customer.value.code == 1002
    assert not isinstance(item.value, ZohoCustomerUnknownError)


def test_the_partner_contact_is_found_by_its_exact_name(zoho_settings):
    contacts = {
        "code": 0,
        "message": "success",
        "contacts": [
            {"contact_id": "1", "contact_name": "T2Mobile Lagos", "email": ""},
            {"contact_id": "2", "contact_name": "T2Mobile", "email": ""},
        ],
        "page_context": {"page": 1, "per_page": 200, "has_more_page": False},
    }
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body("https://www.zohoapis.test"))
        search = rsps.get(f"{API_BASE}/contacts", json=contacts)

        found = ZohoClient.from_settings().contact_find_by_name(name="T2Mobile")

    assert found is not None and found.contact_id == "2"
    assert "contact_name=T2Mobile" in search.calls[0].request.url


# --- The data centre: the token answer's api_domain against ZOHO_API_BASE ---------------------------


@pytest.fixture
def fresh_process(monkeypatch):
    """As in a new process: the mismatch has not been logged yet."""
    monkeypatch.setattr(auth_module, "_data_centre_logged", False)


def refresh_twice(api_domain: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body(api_domain))
        rsps.post(TOKEN_URL, json=token_body(api_domain))
        zoho = ZohoClient.from_settings()
        for _ in range(2):
            cache.delete(zoho._token_key)  # the token expired: the next call refreshes it
            zoho.access_token()


def test_an_api_domain_of_another_data_centre_is_logged_once_and_health_says_mismatch(
    zoho_settings, fresh_process, caplog
):
    with caplog.at_level(logging.WARNING, logger="integrations.zoho.auth"):
        refresh_twice("https://www.zohoapis.eu")

    mismatches = [r for r in caplog.records if "data centre" in r.getMessage()]
    assert len(mismatches) == 1
    report = health_report()
    assert report["checks"]["zohoDataCentre"] == "mismatch" and report["status"] == "degraded"
    assert "zohoapis" not in json.dumps(report, default=str)


def test_the_api_domain_of_zoho_api_base_is_ok_in_health_and_not_logged(zoho_settings, fresh_process, caplog):
    with caplog.at_level(logging.WARNING, logger="integrations.zoho.auth"):
        refresh_twice("https://www.zohoapis.test")

    assert not [r for r in caplog.records if "data centre" in r.getMessage()]
    assert health_report()["checks"]["zohoDataCentre"] == "ok"


def test_a_fixed_data_centre_clears_the_mismatch_at_the_next_token(zoho_settings, fresh_process):
    refresh_twice("https://www.zohoapis.in")
    refresh_twice("https://www.zohoapis.test")

    assert health_report()["checks"]["zohoDataCentre"] == "ok"
