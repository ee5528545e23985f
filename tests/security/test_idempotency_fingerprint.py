"""Issue 21, point 2: an idempotency record must not let Support unmask a customer's phone.

The attack: the record's page showed Support the unkeyed SHA-256 of the canonical request. With the
email (an exact search finds the order) and the masked phone ``+234803****560`` from the order page,
trying the 10,000 phones that fit the mask finds the one whose hash is the fingerprint, in a
twentieth of a second. The fingerprint is now keyed with the server's secret, and staff without the
customer-data permission see nothing of the record that is derived from the request.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.test import override_settings
from django.urls import reverse

from orders import idempotency
from orders.models import IdempotencyRecord, Order
from tests.conftest import order_payload

pytestmark = pytest.mark.django_db

PHONE = "+2348037215560"
MASKED = "+234803****560"


def post(api, payload, key="retry-me"):
    return api.post(
        "/t2mobile/fulfilment", data=json.dumps(payload), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )


def unkeyed(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def phones_fitting(masked: str):
    head, tail = masked.split("****")
    return (f"{head}{n:04d}{tail}" for n in range(10_000))


@pytest.fixture
def placed(api, product):
    payload = order_payload(customerPhone=PHONE)
    assert post(api, payload).status_code == 202
    return payload, IdempotencyRecord.objects.get(key="retry-me")


def test_the_masked_phone_cannot_be_brute_forced_from_the_fingerprint(placed):
    payload, record = placed

    found = [
        phone for phone in phones_fitting(MASKED) if unkeyed({**payload, "customerPhone": phone}) == record.fingerprint
    ]

    assert found == []
    assert record.fingerprint == idempotency.request_fingerprint(payload)  # only the server's key makes it


def test_support_sees_no_fingerprint_and_no_stored_answer_of_a_record(support, placed):
    payload, record = placed
    order = Order.objects.get()

    page = support.get(reverse("admin:orders_idempotencyrecord_change", args=[record.pk])).content.decode()

    assert record.key in page and "202" in page
    assert record.fingerprint not in page
    assert order.order_id not in page and "activationReference" not in page  # the stored answer
    assert "fingerprint" not in page.lower()


def test_support_cannot_confirm_a_guess_by_filtering_on_the_fingerprint(support, placed):
    _, record = placed

    response = support.get(reverse("admin:orders_idempotencyrecord_changelist"), {"fingerprint": record.fingerprint})

    assert response.status_code == 400


def test_a_superuser_still_sees_the_whole_record(superuser, placed):
    _, record = placed

    page = superuser.get(reverse("admin:orders_idempotencyrecord_change", args=[record.pk])).content.decode()

    assert record.fingerprint in page and Order.objects.get().order_id in page


def test_a_retry_of_a_request_stored_before_the_key_is_replayed(api, placed):
    # A record written by the release before: it holds the unkeyed SHA-256 of the request.
    payload, record = placed
    IdempotencyRecord.objects.filter(pk=record.pk).update(fingerprint=unkeyed(payload))

    again = post(api, payload)
    other = post(api, {**payload, "quantity": 2})

    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and other.json()["errorCode"] == "IDEMPOTENCY_KEY_REUSED"
    assert Order.objects.count() == 1


def test_a_retry_after_a_secret_key_rotation_is_replayed(api, placed, settings):
    payload, _ = placed
    old_key = settings.SECRET_KEY

    with override_settings(SECRET_KEY="a-new-secret-key-" + "x" * 50, SECRET_KEY_FALLBACKS=[old_key]):
        again = post(api, payload)

    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
