"""The Zoho client against ``responses`` stubs shaped like Zoho's documented answers."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers

from core.redis_roles import limits
from integrations.zoho.auth import AUTH_BACKOFF_KEY
from integrations.zoho.budget import zoho_budget
from integrations.zoho.client import ZohoClient
from integrations.zoho.errors import ZohoAuthError, ZohoAuthWaitError, ZohoPermanentError, ZohoTransientError
from integrations.zoho.values import LineItem
from t2mobile_portal.health import health_report
from tests.conftest import role_clients
from tests.zoho_fixtures import ACCOUNTS_URL, API_BASE, MAIL_LITE, WORKPLACE

TOKEN_URL = f"{ACCOUNTS_URL}/oauth/v2/token"
TOKEN_BODY = {
    "access_token": "1000.2370ff9f2f7c8a56.0c7ff1e6b5",
    "api_domain": "https://www.zohoapis.com",
    "token_type": "Bearer",
    "expires_in": 3600,
}

pytestmark = pytest.mark.django_db


def token_ok(rsps, body=TOKEN_BODY):
    return rsps.post(TOKEN_URL, json=body)


def items_body(items, *, page=1, has_more=False):
    return {
        "code": 0,
        "message": "success",
        "items": items,
        "page_context": {"page": page, "per_page": 200, "has_more_page": has_more},
    }


def client() -> ZohoClient:
    return ZohoClient.from_settings()


def test_token_is_fetched_once_and_sent_with_the_organisation(zoho_settings):
    with responses.RequestsMock() as rsps:
        token = token_ok(rsps)
        items = rsps.get(f"{API_BASE}/items", json=items_body([MAIL_LITE]))
        first, second = client(), client()

        first.items_page(page=1)
        second.items_page(page=1)

        assert token.call_count == 1
        assert items.call_count == 2
        request = items.calls[0].request
        assert request.headers["Authorization"] == f"Zoho-oauthtoken {TOKEN_BODY['access_token']}"
        assert "organization_id=60012345678" in request.url
        assert rsps.calls[0].request.body == (
            "refresh_token=1000.test-refresh-token&client_id=1000.TESTCLIENT&client_secret=test-client-secret"
            "&grant_type=refresh_token"
        )


def test_token_answer_with_error_field_and_http_200_is_a_failure_remembered_briefly(zoho_settings):
    with responses.RequestsMock() as rsps:
        token = rsps.post(TOKEN_URL, json={"error": "invalid_code"}, status=200)
        zoho = client()

        with pytest.raises(ZohoAuthError, match="invalid_code"):
            zoho.items_page(page=1)
        with pytest.raises(ZohoAuthError):
            zoho.items_page(page=1)

        assert token.call_count == 1  # Zoho blocks refresh tokens that ask too often


def test_access_denied_throttling_of_the_token_endpoint_is_transient_for_orders(zoho_settings):
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json={"error": "Access Denied", "error_description": "You have made too many requests"})

        with pytest.raises(ZohoTransientError):
            client().access_token()


def test_concurrent_workers_refresh_the_token_once(zoho_settings):
    def slow_token(request):
        time.sleep(0.3)
        return 200, {}, '{"access_token": "1000.shared", "expires_in": 3600, "token_type": "Bearer"}'

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, TOKEN_URL, callback=slow_token)
        clients = [client() for _ in range(8)]  # one per "process": nothing shared but the cache
        barrier = threading.Barrier(len(clients))
        tokens = []

        def worker(zoho):
            barrier.wait()
            tokens.append(zoho.access_token())

        threads = [threading.Thread(target=worker, args=(zoho,)) for zoho in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert tokens == ["1000.shared"] * 8
        assert len([c for c in rsps.calls if c.request.url == TOKEN_URL]) == 1


def test_items_are_read_page_by_page_until_has_more_page_is_false(zoho_settings):
    second_item = {**WORKPLACE, "rate": "3000.50"}  # a rate Zoho sends as a string
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(
            f"{API_BASE}/items",
            match=[matchers.query_param_matcher({"page": "1", "per_page": "200", "organization_id": "60012345678"})],
            json=items_body([MAIL_LITE], page=1, has_more=True),
        )
        rsps.get(
            f"{API_BASE}/items",
            match=[matchers.query_param_matcher({"page": "2", "per_page": "200", "organization_id": "60012345678"})],
            json=items_body([second_item], page=2, has_more=False),
        )

        items = list(client().items())

    assert [item.item_id for item in items] == [MAIL_LITE["item_id"], WORKPLACE["item_id"]]
    assert items[1].rate == Decimal("3000.50")
    assert items[0].status == "active"


def test_401_code_57_drops_the_token_refreshes_and_retries_once(zoho_settings):
    with responses.RequestsMock() as rsps:
        token = rsps.post(TOKEN_URL, json=TOKEN_BODY)
        rsps.get(
            f"{API_BASE}/items",
            status=401,
            json={"code": 57, "message": "You are not authorized to perform this operation"},
        )
        rsps.get(f"{API_BASE}/items", json=items_body([MAIL_LITE]))

        page = client().items_page(page=1)

        assert [item.item_id for item in page.items] == [MAIL_LITE["item_id"]]
        assert token.call_count == 2


def test_401_again_after_a_fresh_token_is_an_auth_outage_not_an_order_failure(zoho_settings):
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=TOKEN_BODY)
        api = rsps.get(f"{API_BASE}/items", status=401, json={"code": 57, "message": "You are not authorized"})

        with pytest.raises(ZohoAuthError) as caught:
            client().items_page(page=1)

        assert isinstance(caught.value, ZohoTransientError)
        assert api.call_count == 2


def test_health_reports_zoho_failing_while_it_refuses_us_and_ok_once_a_refresh_works(zoho_settings):
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=TOKEN_BODY)
        rsps.get(f"{API_BASE}/items", status=401, json={"code": 57, "message": "You are not authorized"})
        with pytest.raises(ZohoAuthError):
            client().items_page(page=1)

    failing = health_report()
    assert failing["checks"]["zoho"] == "failing" and failing["status"] == "degraded"
    assert failing["checks"]["zohoFailingSince"].endswith("Z")

    # While the shared back-off lasts, no worker asks Zoho for a token or calls it at all.
    with responses.RequestsMock() as rsps, pytest.raises(ZohoAuthWaitError) as waiting:
        client().items_page(page=1)
    assert 100 < waiting.value.retry_after <= 120

    # Once the back-off has run out, a working token clears the failure.
    state = limits.get(AUTH_BACKOFF_KEY)
    limits.set(AUTH_BACKOFF_KEY, {**state, "until": 0}, timeout=600)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API_BASE}/items", status=401, json={"code": 57, "message": "You are not authorized"})
        rsps.post(TOKEN_URL, json=TOKEN_BODY)
        rsps.get(f"{API_BASE}/items", json=items_body([MAIL_LITE]))
        client().items_page(page=1)

    assert health_report()["checks"]["zoho"] == "ok"
    assert "zohoFailingSince" not in health_report()["checks"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"message": "Bad request"}),
        (405, {"code": 5, "message": "Invalid URL Passed"}),
        (200, {"code": 9, "message": "odd"}),
    ],
    ids=["400-without-code", "405-code-5", "200-with-code"],
)
def test_errors_that_do_not_say_the_data_is_invalid_are_transient(zoho_settings, status, body):
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(f"{API_BASE}/items/1", status=status, json=body)

        with pytest.raises(ZohoTransientError):
            client().item_get(item_id="1")


def test_429_is_transient_and_its_retry_after_pauses_every_worker(zoho_settings):
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(
            f"{API_BASE}/contacts",
            status=429,
            headers={"Retry-After": "7"},
            json={"code": 44, "message": "You have made too many requests continuously."},
        )

        with pytest.raises(ZohoTransientError) as caught:
            client().contact_find_by_name(name="T2M-CUST-0091")

    assert caught.value.retry_after == 7
    assert 5 < zoho_budget()._try_token() <= 7  # every worker now waits


def test_5xx_is_transient(zoho_settings):
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(f"{API_BASE}/salesorders", status=503, body="<html>Service Unavailable</html>")

        with pytest.raises(ZohoTransientError) as caught:
            client().sales_order_find_by_reference(reference="T2M1")

    assert caught.value.http_status == 503


def test_timeout_is_transient_and_calls_use_10s_connect_30s_read(zoho_settings):
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.post(f"{API_BASE}/salesorders", body=requests.exceptions.ReadTimeout("read timed out"))

        with pytest.raises(ZohoTransientError, match="ReadTimeout"):
            client().sales_order_create(
                customer_id="1",
                reference="T2M1",
                on=date(2026, 11, 23),
                line_items=[LineItem(MAIL_LITE["item_id"], 1, Decimal("1500"))],
            )

        assert rsps.calls[-1].request.req_kwargs["timeout"] == (10, 30)


def test_code_1002_is_permanent_with_zohos_code_and_message(zoho_settings):
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(f"{API_BASE}/items/999", status=404, json={"code": 1002, "message": "Item does not exist."})

        with pytest.raises(ZohoPermanentError) as caught:
            client().item_get(item_id="999")

    assert caught.value.code == 1002
    assert "1002" in caught.value.describe() and "Item does not exist." in caught.value.describe()


def test_sales_order_lookup_matches_the_reference_exactly(zoho_settings):
    loose = {
        "code": 0,
        "message": "success",
        "salesorders": [
            {"salesorder_id": "1", "salesorder_number": "SO-00001", "reference_number": "T2M1234", "status": "draft"},
            {
                "salesorder_id": "2",
                "salesorder_number": "SO-00002",
                "reference_number": "T2M123",
                "status": "confirmed",
            },
        ],
    }
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(f"{API_BASE}/salesorders", json=loose)
        rsps.get(f"{API_BASE}/salesorders", json=loose)
        zoho = client()

        exact = zoho.sales_order_find_by_reference(reference="T2M123")
        missing = zoho.sales_order_find_by_reference(reference="T2M12")

    assert (exact.salesorder_id, exact.status) == ("2", "confirmed")
    assert missing is None


def test_sales_order_create_accepts_both_names_of_the_object(zoho_settings):
    created = {
        "salesorder_id": "4815000000101",
        "salesorder_number": "SO-00101",
        "reference_number": "T2M1",
        "status": "draft",
        "customer_id": "77",
    }
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.post(
            f"{API_BASE}/salesorders",
            status=201,
            json={"code": 0, "message": "Sales Order has been created.", "sales_order": created},
        )

        sales_order = client().sales_order_create(
            customer_id="77",
            reference="T2M1",
            on=date(2026, 11, 23),
            line_items=[LineItem(MAIL_LITE["item_id"], 2, Decimal("1500.00"), "12 months")],
            notes="n",
        )

        sent = json.loads(rsps.calls[-1].request.body)
    assert (sales_order.salesorder_id, sales_order.status) == ("4815000000101", "draft")
    assert sent["reference_number"] == "T2M1" and sent["customer_id"] == "77"
    assert sent["line_items"] == [
        {"item_id": MAIL_LITE["item_id"], "quantity": 2, "rate": 1500.0, "description": "12 months"}
    ]


def test_redis_holds_the_access_token_for_its_lifetime_and_never_the_long_lived_credentials(zoho_settings):
    """What docs/runbook.md says an intruder reading Redis gets: the access token, for under an hour."""
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(f"{API_BASE}/items", json=items_body([MAIL_LITE]))
        client().items_page(page=1)

    roles = role_clients()  # the broker's, the cache's and the limits' databases
    token_keys = [(db, key) for db in roles.values() for key in db.scan_iter(match="*zoho:access_token:*")]
    assert len(token_keys) == 1
    [(db, key)] = token_keys
    assert 0 < db.ttl(key) <= TOKEN_BODY["expires_in"] - 60
    stored = b"".join(db.dump(key) or b"" for db in roles.values() for key in db.scan_iter(match="*"))
    assert TOKEN_BODY["access_token"].encode() in stored  # the documented exposure, and only that
    for credential in ("1000.test-refresh-token", "test-client-secret"):
        assert credential.encode() not in stored
