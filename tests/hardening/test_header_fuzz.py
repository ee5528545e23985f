"""Fuzz of the headers an attacker or a buggy client controls: Idempotency-Key, Authorization and
X-Request-ID. Whatever arrives, the answer is the contract's (never a 5xx, never an echo of junk)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from orders.models import Order
from tests.conftest import order_payload

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
# Header values as a WSGI server hands them to Django: latin-1 text without line breaks.
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=400)


def test_idempotency_key_fuzz_is_accepted_or_refused_cleanly(api, product):
    seen_orders = []

    @FUZZ
    @given(key=header_text)
    def run(key):
        payload = order_payload(orderId=f"FZ{len(seen_orders)}")
        seen_orders.append(payload["orderId"])
        response = api.post(
            "/t2mobile/fulfilment", data=json.dumps(payload), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
        )
        assert response.status_code in (202, 400, 422), response.content
        if response.status_code == 400:
            assert response.json()["errorCode"] == "IDEMPOTENCY_KEY_MISSING"

    run()


def test_authorization_fuzz_is_always_401_for_junk(db, api_key):
    @FUZZ
    @given(value=header_text)
    def run(value):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=value)
        response = client.get("/t2mobile/orders")
        assert response.status_code == 401
        assert response.json()["errorCode"] == "UNAUTHORIZED"
        assert response["WWW-Authenticate"] == "Bearer"

    run()


def test_request_id_fuzz_is_echoed_only_when_sane(api):
    @FUZZ
    @given(value=header_text)
    def run(value):
        response = api.get("/t2mobile/health/live", HTTP_X_REQUEST_ID=value)
        echoed = response["X-Request-ID"]
        assert response.status_code == 200
        sane = 1 <= len(value) <= 128 and all(c.isascii() and (c.isalnum() or c in "._-") for c in value)
        assert (echoed == value) == sane
        assert "\r" not in echoed and "\n" not in echoed

    run()


def test_no_fuzzed_request_left_a_half_written_order(api, product):
    response = api.post(
        "/t2mobile/fulfilment",
        data=json.dumps(order_payload()),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k" * 256,
    )

    assert response.status_code == 400
    assert not Order.objects.exists()
