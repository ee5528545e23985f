"""GET /t2mobile/products, /t2mobile/orders/{orderId}, /t2mobile/orders, health."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from catalogue.models import ProductPlan
from catalogue.selectors import catalogue_invalidate
from orders.models import Order
from partners.services import api_key_create
from tests.conftest import place_order
from tests.factories import PartnerFactory, ProductFactory, ProductPlanFactory
from tests.zoho_fixtures import MAIL_LITE

pytestmark = pytest.mark.django_db


def place(api, **overrides):
    return Order.objects.get(order_id=place_order(api, **overrides)["orderId"])


# --- Products -------------------------------------------------------------------------------------


def test_products_lists_the_published_catalogue(api, product):
    response = api.get("/t2mobile/products")

    body = response.json()
    assert body["success"] is True and body["partnerId"] == "ICONTECH001" and body["currency"] == "NGN"
    assert body["updatedAt"].endswith("Z")
    assert body["products"] == [
        {
            "productId": MAIL_LITE["item_id"],
            "sku": MAIL_LITE["sku"],
            "name": MAIL_LITE["name"],
            "description": MAIL_LITE["description"],
            "plans": [{"tenure": "1_MONTH", "price": "1500.00"}, {"tenure": "12_MONTHS", "price": "15000.00"}],
        }
    ]


def test_unpublished_inactive_and_planless_products_are_not_listed(api, product):
    ProductFactory(item_id="2", name="Hidden", is_published=False)
    inactive = ProductFactory(item_id="3", name="Gone", is_published=True, zoho_status="inactive")
    ProductPlanFactory(product=inactive, tenure="1_MONTH", price=Decimal("1"))
    ProductFactory(item_id="4", name="No plans", is_published=True)
    catalogue_invalidate()

    ids = [p["productId"] for p in api.get("/t2mobile/products").json()["products"]]

    assert ids == [MAIL_LITE["item_id"]]


def test_products_etag_gives_304_until_the_catalogue_changes(api, product):
    etag = api.get("/t2mobile/products")["ETag"]

    assert api.get("/t2mobile/products", HTTP_IF_NONE_MATCH=etag).status_code == 304

    ProductPlan.objects.filter(tenure="1_MONTH").update(price=Decimal("1600.00"))
    catalogue_invalidate()
    changed = api.get("/t2mobile/products", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def partner_client(partner_id: str, prefix: str) -> APIClient:
    _, plain = api_key_create(partner=PartnerFactory(partner_id=partner_id, prefix=prefix), name="products test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_products_names_the_calling_partner_even_with_the_cache_warm_from_another(api, product):
    # Given T2Mobile's call has put the catalogue in the cache
    first = api.get("/t2mobile/products").json()
    other = partner_client("OTHERCO01", "OTH")

    # When another partner reads the products
    theirs = other.get("/t2mobile/products").json()
    mine = api.get("/t2mobile/products").json()

    # Then each answer names its caller, over the same shared catalogue
    assert first["partnerId"] == mine["partnerId"] == "ICONTECH001"
    assert theirs["partnerId"] == "OTHERCO01"
    assert theirs["products"] == mine["products"] and theirs["products"]


def test_an_etag_is_the_callers_own(api, product):
    other = partner_client("OTHERCO01", "OTH")
    mine = api.get("/t2mobile/products")["ETag"]
    theirs = other.get("/t2mobile/products")["ETag"]

    assert mine != theirs
    assert other.get("/t2mobile/products", HTTP_IF_NONE_MATCH=theirs).status_code == 304
    assert other.get("/t2mobile/products", HTTP_IF_NONE_MATCH=mine).status_code == 200


# --- One order ------------------------------------------------------------------------------------


def test_order_detail_has_the_contract_fields(api, product):
    place(api)

    body = api.get("/t2mobile/orders/T2M123456").json()

    assert body["success"] is True
    assert body["orderId"] == "T2M123456" and body["status"] == "PROCESSING" and body["type"] == "NEW"
    assert body["productId"] == MAIL_LITE["item_id"] and body["tenure"] == "12_MONTHS" and body["quantity"] == 1
    assert body["customerId"] == "CUST-0091"
    for field in ("activationReference", "salesOrderId", "startsAt", "expiresAt", "failureReason"):
        assert body[field] is None
    assert body["createdAt"].endswith("Z") and body["updatedAt"].endswith("Z")
    assert "customerEmail" not in body and "customerPhone" not in body


def test_failed_order_shows_failure_reason(api, product):
    order = place(api)
    Order.objects.filter(pk=order.pk).update(status="FAILED", failure_reason="The product could not be provisioned.")

    body = api.get("/t2mobile/orders/T2M123456").json()

    assert body["status"] == "FAILED" and body["failureReason"] == "The product could not be provisioned."


def test_unknown_order_is_404_order_not_found(api):
    response = api.get("/t2mobile/orders/T2M-NOPE")

    assert response.status_code == 404 and response.json()["errorCode"] == "ORDER_NOT_FOUND"


def test_another_partners_order_is_not_found(api, product):
    place(api)
    other = PartnerFactory(partner_id="OTHER001", name="Other")
    _, key = api_key_create(partner=other)
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    response = other_api.get("/t2mobile/orders/T2M123456")

    assert response.status_code == 404 and response.json()["errorCode"] == "ORDER_NOT_FOUND"
    assert other_api.get("/t2mobile/orders").json()["orders"] == []


# --- Order list -----------------------------------------------------------------------------------


def test_order_list_pages_newest_first_with_a_cursor(api, product):
    for i in range(5):
        place(api, orderId=f"T2M-{i}")

    first = api.get("/t2mobile/orders?limit=2").json()
    second = api.get(f"/t2mobile/orders?limit=2&cursor={first['nextCursor']}").json()
    third = api.get(f"/t2mobile/orders?limit=2&cursor={second['nextCursor']}").json()

    seen = [o["orderId"] for page in (first, second, third) for o in page["orders"]]
    assert seen == ["T2M-4", "T2M-3", "T2M-2", "T2M-1", "T2M-0"]
    assert third["nextCursor"] is None


def test_order_list_filters(api, product):
    place(api, orderId="A1", customerId="C1")
    place(api, orderId="A2", customerId="C2")
    Order.objects.filter(order_id="A2").update(status="FULFILLED")

    by_status = api.get("/t2mobile/orders?status=FULFILLED").json()["orders"]
    by_customer = api.get("/t2mobile/orders?customerId=C1").json()["orders"]
    by_time = api.get("/t2mobile/orders?updatedSince=2999-01-01T00:00:00Z").json()["orders"]

    assert [o["orderId"] for o in by_status] == ["A2"]
    assert [o["orderId"] for o in by_customer] == ["A1"]
    assert by_time == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=x",
        "status=DONE",
        "updatedSince=yesterday",
        "cursor=%%%",
        "cursor=eyJiZWZvcmUiOiAieCJ9",
    ],
)
def test_bad_list_parameters_are_validation_errors(api, query):
    response = api.get(f"/t2mobile/orders?{query}")

    assert response.status_code == 400 and response.json()["errorCode"] == "VALIDATION_ERROR"


# --- Health ---------------------------------------------------------------------------------------


def test_liveness_needs_no_key(client):
    response = client.get("/t2mobile/health/live")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_health_needs_a_key(client):
    assert client.get("/t2mobile/health").status_code == 401


def test_health_reports_checks_without_hostnames(api):
    response = api.get("/t2mobile/health")

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert body["checks"]["cache"] == "ok" and body["checks"]["zoho"] == "ok"
    assert "queueDepth" not in body["checks"]  # the operators' figure (t2mobile_portal/health.py)
    assert body["checks"]["stuckOrders"] == 0
    assert "127.0.0.1" not in response.content.decode() and "postgres" not in response.content.decode()
