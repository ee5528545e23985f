"""Every non-2xx answer under /t2mobile/ is the error envelope; X-Request-ID on every answer."""

from __future__ import annotations

import pytest
from django.db import OperationalError

pytestmark = pytest.mark.django_db


def envelope(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) <= {"success", "errorCode", "message", "details", "requestId"}
    assert body["success"] is False and body["errorCode"] == code
    return body


def test_unknown_path_is_404_not_found(api):
    envelope(api.get("/t2mobile/nothing-here"), 404, "NOT_FOUND")


def test_unknown_path_without_key_is_404_too(client):
    envelope(client.get("/t2mobile/nothing/here"), 404, "NOT_FOUND")


def test_wrong_method_is_405(api):
    envelope(api.delete("/t2mobile/products"), 405, "METHOD_NOT_ALLOWED")
    envelope(api.get("/t2mobile/fulfilment"), 405, "METHOD_NOT_ALLOWED")


def test_body_over_64_kib_is_413(api, product):
    body = '{"orderId": "' + "x" * (64 * 1024) + '"}'

    response = api.post("/t2mobile/fulfilment", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")

    envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_non_json_content_type_is_415(api, product):
    response = api.post(
        "/t2mobile/fulfilment",
        data="orderId=1",
        content_type="application/x-www-form-urlencoded",
        HTTP_IDEMPOTENCY_KEY="k",
    )

    envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_unexpected_error_is_500_without_internals(api, monkeypatch):
    def boom():
        raise RuntimeError("secret internals at db.internal:5432")

    monkeypatch.setattr("orders.api.catalogue_document", boom)

    response = api.get("/t2mobile/products")

    body = envelope(response, 500, "INTERNAL_ERROR")
    assert "internals" not in response.content.decode() and "Traceback" not in response.content.decode()
    assert body["requestId"] == response["X-Request-ID"]


def test_database_unreachable_is_503(api, monkeypatch):
    def down():
        raise OperationalError('connection to server at "10.0.0.5", port 5432 failed')

    monkeypatch.setattr("orders.api.catalogue_document", down)

    response = api.get("/t2mobile/products")

    envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert "10.0.0.5" not in response.content.decode()


def test_sane_request_id_is_echoed(api):
    response = api.get("/t2mobile/products", HTTP_X_REQUEST_ID="t2m-req.42_A")

    assert response["X-Request-ID"] == "t2m-req.42_A"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "inj\r\nSet-Cookie: a=b", "<script>"])
def test_insane_request_id_is_replaced(api, bad):
    response = api.get("/t2mobile/products", HTTP_X_REQUEST_ID=bad)

    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_error_answers_carry_the_request_id_in_body_and_header(client):
    response = client.get("/t2mobile/products", HTTP_X_REQUEST_ID="abc-123")

    body = envelope(response, 401, "UNAUTHORIZED")
    assert body["requestId"] == "abc-123" == response["X-Request-ID"]
