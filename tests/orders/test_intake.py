"""POST /t2mobile/fulfilment: the validation table, the idempotency section, one transaction."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from orders import idempotency
from orders.idempotency import _advisory_lock_id
from orders.models import Fulfilment, IdempotencyRecord, Order
from partners.models import Partner
from partners.services import api_key_create
from t2mobile_portal.celery import app
from tests.conftest import order_payload
from tests.zoho_fixtures import point_celery_at

pytestmark = pytest.mark.django_db


def post(api, payload, key="key-1", **extra):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post("/t2mobile/fulfilment", data=body, content_type="application/json", **headers, **extra)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["errorCode"] == code
    assert body["message"]
    assert body["requestId"] == response["X-Request-ID"]
    return body


# --- Accepted -------------------------------------------------------------------------------------


def test_valid_order_is_accepted_with_202_body(api, product, payload):
    response = post(api, payload)

    assert response.status_code == 202
    assert response.json() == {
        "success": True,
        "orderId": "T2M123456",
        "status": "PROCESSING",
        "activationReference": None,
        "statusUrl": "/t2mobile/orders/T2M123456",
    }


def test_accepted_order_writes_order_fulfilment_and_record(api, product, partner, payload):
    post(api, payload)

    order = Order.objects.get(partner=partner, order_id="T2M123456")
    assert order.status == Order.Status.PROCESSING
    assert str(order.unit_price) == "15000.00" and order.currency == "NGN"
    assert order.metadata == {"campaign": "DEC-PROMO"}
    assert Fulfilment.objects.get(order=order).status == Fulfilment.Status.PENDING
    assert IdempotencyRecord.objects.get(partner=partner, key="key-1").response_status == 202


def test_email_is_lower_cased_and_name_trimmed(api, product, partner):
    post(api, order_payload(customerEmail="Ada.Obi@Example.COM", customerName="  Ada Obi  "))

    order = Order.objects.get(order_id="T2M123456")
    assert order.customer_email == "ada.obi@example.com"
    assert order.customer_name == "Ada Obi"


@pytest.mark.parametrize(
    "local, normalised",
    [
        ("08031234567", "+2348031234567"),
        ("2348031234567", "+2348031234567"),
        ("+234 803 123 4567", "+2348031234567"),
        ("+14155550123", "+14155550123"),
    ],
)
def test_phone_is_normalised_to_e164(api, product, local, normalised):
    post(api, order_payload(customerPhone=local))

    assert Order.objects.get(order_id="T2M123456").customer_phone == normalised


def test_quantity_defaults_to_one_and_unknown_fields_are_ignored(api, product):
    payload = order_payload(somethingElse="x")
    del payload["quantity"], payload["type"], payload["renewalOf"], payload["metadata"]

    response = post(api, payload)

    assert response.status_code == 202
    order = Order.objects.get(order_id="T2M123456")
    assert order.quantity == 1 and order.type == "NEW" and order.metadata == {}


# --- Validation table -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("orderId", None),
        ("orderId", ""),
        ("orderId", "T2M 123"),
        ("orderId", "x" * 65),
        ("orderId", 123),
        ("productId", None),
        ("tenure", None),
        ("tenure", "2_MONTHS"),
        ("quantity", 0),
        ("quantity", 1001),
        ("quantity", "5"),
        ("quantity", 1.5),
        ("quantity", True),
        ("customerId", None),
        ("customerId", "c" * 65),
        ("customerName", None),
        ("customerName", "   "),
        ("customerName", "Ada\x00Obi"),
        ("customerName", "n" * 201),
        ("customerEmail", None),
        ("customerEmail", "not-an-email"),
        ("customerEmail", "a" * 250 + "@x.com"),
        ("customerPhone", None),
        ("customerPhone", "12345"),
        ("customerPhone", "+0123456789"),
        ("customerPhone", "+1234567890123456"),
        ("type", "UPGRADE"),
        ("metadata", {f"k{i}": "v" for i in range(21)}),
        ("metadata", {"k": "v" * 501}),
        ("metadata", {"k": 5}),
        ("metadata", ["not", "an", "object"]),
    ],
)
def test_invalid_field_is_400_validation_error_naming_the_field(api, product, field, value):
    payload = order_payload(**{field: value})
    if value is None:
        del payload[field]

    response = post(api, payload)

    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert any(key.split(".")[0] == field for key in body["details"]), body
    assert not Order.objects.exists()


def test_renewal_without_renewal_of_is_validation_error(api, product):
    body = assert_error(post(api, order_payload(type="RENEWAL")), 400, "VALIDATION_ERROR")
    assert "renewalOf" in body["details"]


def test_renewal_of_on_a_new_order_is_validation_error(api, product):
    body = assert_error(post(api, order_payload(renewalOf="T2M000001")), 400, "VALIDATION_ERROR")
    assert "renewalOf" in body["details"]


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"a string"', "null"])
def test_body_that_is_not_a_json_object_is_malformed_json(api, product, body):
    assert_error(post(api, body), 400, "MALFORMED_JSON")


def test_unknown_product_is_400(api, product):
    assert_error(post(api, order_payload(productId="999")), 400, "UNKNOWN_PRODUCT")


def test_unpublished_product_is_unknown(api, product):
    product.is_published = False
    product.save()

    assert_error(post(api, order_payload()), 400, "UNKNOWN_PRODUCT")


def test_product_inactive_in_zoho_is_unknown(api, product):
    product.zoho_status = "inactive"
    product.save()

    assert_error(post(api, order_payload()), 400, "UNKNOWN_PRODUCT")


def test_tenure_not_offered_is_400(api, product):
    assert_error(post(api, order_payload(tenure="6_MONTHS")), 400, "TENURE_NOT_OFFERED")


def test_renewal_of_an_unknown_order_is_renewal_target_not_found(api, product):
    response = post(api, order_payload(orderId="T2M2", type="RENEWAL", renewalOf="T2M-NOPE"))

    assert_error(response, 400, "RENEWAL_TARGET_NOT_FOUND")


def test_renewal_of_an_order_not_fulfilled_is_renewal_target_not_found(api, product):
    post(api, order_payload(), key="first")

    response = post(api, order_payload(orderId="T2M2", type="RENEWAL", renewalOf="T2M123456"), key="second")

    assert_error(response, 400, "RENEWAL_TARGET_NOT_FOUND")


def test_renewal_of_a_fulfilled_order_is_accepted(api, product):
    post(api, order_payload(), key="first")
    Order.objects.filter(order_id="T2M123456").update(status=Order.Status.FULFILLED)

    response = post(api, order_payload(orderId="T2M2", type="RENEWAL", renewalOf="T2M123456"), key="second")

    assert response.status_code == 202
    assert Order.objects.get(order_id="T2M2").renewal_of.order_id == "T2M123456"


def test_renewal_of_another_customers_order_is_not_found(api, product):
    post(api, order_payload(), key="first")
    Order.objects.filter(order_id="T2M123456").update(status=Order.Status.FULFILLED)

    response = post(
        api, order_payload(orderId="T2M2", type="RENEWAL", renewalOf="T2M123456", customerId="CUST-OTHER"), key="second"
    )

    assert_error(response, 400, "RENEWAL_TARGET_NOT_FOUND")


# --- Idempotency ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", [None, "", "k" * 256, "bad key with spaces", "é-not-ascii", '""', "dupA,dupB", '"dupA","dupB"', '"a,b"']
)
def test_missing_or_bad_idempotency_key_is_400(api, product, payload, key):
    assert_error(post(api, payload, key=key), 400, "IDEMPOTENCY_KEY_MISSING")
    assert not Order.objects.exists()


def test_replay_returns_the_same_body_with_replayed_header(api, product, payload):
    first = post(api, payload)

    again = post(api, payload)

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Order.objects.count() == 1


def test_replay_of_a_stored_4xx_returns_it_again(api, product):
    first = post(api, order_payload(productId="999"))

    again = post(api, order_payload(productId="999"))

    assert again.status_code == 400
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


def test_same_key_with_different_body_is_422(api, product, payload):
    post(api, payload)

    response = post(api, order_payload(quantity=2))

    assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
    assert Order.objects.get().quantity == 1


def test_key_in_rfc8941_quoted_form_names_the_same_key(api, product, payload):
    post(api, payload, key="8e03-abc")

    again = post(api, payload, key='"8e03-abc"')

    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"


def test_key_order_of_json_fields_does_not_change_the_fingerprint(api, product, payload):
    post(api, payload)
    reordered = dict(reversed(list(payload.items())))

    again = post(api, reordered)

    assert again["Idempotent-Replayed"] == "true"


def test_keys_are_scoped_to_the_partner(api, product, payload, db):
    other = Partner.objects.create(partner_id="OTHER001", name="Other")
    _, other_key = api_key_create(partner=other)
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    post(api, payload)

    response = post(other_api, payload)

    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response
    assert Order.objects.filter(order_id="T2M123456").count() == 2


def test_same_order_id_under_a_new_key_is_409_duplicate_order_with_status(api, product, payload):
    post(api, payload, key="first")

    response = post(api, payload, key="second")

    body = assert_error(response, 409, "DUPLICATE_ORDER")
    assert body["details"]["status"] == "PROCESSING"
    assert Order.objects.count() == 1


def test_expired_record_still_gives_duplicate_order(api, product, payload):
    post(api, payload, key="first")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post(api, payload, key="first")

    assert_error(response, 409, "DUPLICATE_ORDER")


def test_an_expired_key_reused_for_another_order_is_422_and_makes_nothing(api, product, payload):
    post(api, payload, key="first")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post(api, {**payload, "orderId": "T2M-OTHER-9"}, key="first")

    assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
    assert list(Order.objects.values_list("order_id", flat=True)) == [payload["orderId"]]


@pytest.mark.django_db(transaction=True)
def test_request_while_the_first_is_in_flight_is_409(api, product, partner, payload):
    # The first request is "in flight": another session holds the key's lock, as order_accept does.
    params = connection.get_connection_params()
    holder = psycopg.connect(
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        dbname=params["dbname"],
        autocommit=True,
    )
    holder.execute("SELECT pg_advisory_lock(%s)", [_advisory_lock_id(partner.pk, "key-1")])
    try:
        response = post(api, payload)
    finally:
        holder.close()

    assert_error(response, 409, "REQUEST_IN_PROGRESS")
    assert not Order.objects.exists()
    assert post(api, payload).status_code == 202


# --- One transaction, enqueue on commit -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_provisioning_job_is_queued_after_commit(api, product, payload, clean_redis):
    response = post(api, payload)

    assert response.status_code == 202
    messages = clean_redis.lrange("provisioning", 0, -1)
    assert len(messages) == 1
    message = json.loads(messages[0])
    assert message["headers"]["task"] == "orders.provision_order"
    assert json.loads(__import__("base64").b64decode(message["body"]))[0] == [Order.objects.get().pk]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_request_queues_nothing_and_stores_nothing(api, product, payload, clean_redis, monkeypatch):
    # Given the idempotency record cannot be written (the last write of the transaction)
    def broken_insert(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(idempotency, "row_insert", broken_insert)

    response = post(api, payload)

    assert_error(response, 500, "INTERNAL_ERROR")
    assert "disk full" not in response.content.decode()
    assert not Order.objects.exists() and not Fulfilment.objects.exists()
    assert not IdempotencyRecord.objects.exists()
    assert clean_redis.llen("provisioning") == 0


@pytest.mark.django_db(transaction=True)
def test_replay_queues_nothing_more(api, product, payload, clean_redis):
    post(api, payload)
    post(api, payload)
    post(api, payload)

    assert clean_redis.llen("provisioning") == 1


@pytest.mark.django_db(transaction=True)
def test_order_is_accepted_when_the_broker_is_down(api, product, payload, settings):
    # Given a broker address where nothing listens
    previous = point_celery_at("redis://127.0.0.1:1/0")
    try:
        with app.connection_for_write() as conn:
            assert conn.as_uri().endswith(":1/0")
        response = post(api, payload)
    finally:
        point_celery_at(previous)

    assert response.status_code == 202
    order = Order.objects.get()
    assert order.status == Order.Status.PROCESSING
    assert order.fulfilment.next_attempt_at is not None  # the sweeper's cue
