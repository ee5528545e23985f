"""Every non-2xx answer under /t2mobile/ is the error envelope; X-Request-ID on every answer."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client

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

    monkeypatch.setattr("catalogue.api.catalogue_document", boom)

    response = api.get("/t2mobile/products")

    body = envelope(response, 500, "INTERNAL_ERROR")
    assert "internals" not in response.content.decode() and "Traceback" not in response.content.decode()
    assert body["requestId"] == response["X-Request-ID"]


def test_database_unreachable_is_503(api, monkeypatch):
    def down():
        raise OperationalError('connection to server at "10.0.0.5", port 5432 failed')

    monkeypatch.setattr("catalogue.api.catalogue_document", down)

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


# --- Issue 11, item 7: the docs, the schema and a foreign Host answer the envelope too -------------


@pytest.mark.parametrize("path", ["/t2mobile/docs/", "/t2mobile/schema/", "/t2mobile/schema/?format=json"])
@pytest.mark.parametrize("accept", ["text/html", "application/vnd.oai.openapi", "*/*"])
def test_docs_and_schema_without_a_key_are_the_401_envelope_as_json(client, path, accept):
    response = client.get(path, HTTP_ACCEPT=accept)

    envelope(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"] == "Bearer"
    # A person who opened the page in a browser is told where to sign in, and comes back after.
    body = response.json()
    assert "/admin/" in body["message"]
    assert body["details"] == {"signIn": [f"/admin/login/?next={path.split('?')[0]}"]}


def test_docs_and_schema_with_a_wrong_key_are_the_401_envelope_as_json(client):
    for path in ("/t2mobile/docs/", "/t2mobile/schema/"):
        envelope(client.get(path, HTTP_AUTHORIZATION="Bearer not-a-key", HTTP_ACCEPT="text/html"), 401, "UNAUTHORIZED")


def test_docs_and_schema_refuse_other_methods_with_the_405_envelope(api):
    envelope(api.post("/t2mobile/docs/"), 405, "METHOD_NOT_ALLOWED")
    envelope(api.delete("/t2mobile/schema/"), 405, "METHOD_NOT_ALLOWED")


def test_the_schema_still_answers_yaml_and_json_to_a_partner(api):
    assert api.get("/t2mobile/schema/").status_code == 200
    assert api.get("/t2mobile/schema/?format=json").json()["openapi"].startswith("3.")


def test_an_unknown_schema_format_is_an_envelope_not_an_html_page(api):
    response = api.get("/t2mobile/schema/?format=xml")

    assert response.status_code == 404
    envelope(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/t2mobile/products", "/t2mobile/health/live", "/t2mobile/docs/", "/t2mobile/x"])
def test_a_foreign_host_header_is_the_400_envelope_even_with_debug(client, settings, debug, path):
    settings.DEBUG = debug

    response = client.get(path, HTTP_HOST="attacker.example")

    body = envelope(response, 400, "VALIDATION_ERROR")
    assert "attacker.example" not in response.content.decode()
    assert body["requestId"] == response["X-Request-ID"]


def test_over_a_thousand_query_parameters_are_a_400_envelope(api):
    query = "&".join("p" for _ in range(1100))  # short enough (2,199 characters) to be no 414

    envelope(api.get(f"/t2mobile/orders?{query}"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("accept", ["text/html", "application/xml"])
def test_an_accept_header_we_cannot_satisfy_gets_json_not_a_500(api, product, accept):
    response = api.get("/t2mobile/products", HTTP_ACCEPT=accept)

    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options", "get"])
def test_any_method_on_an_unknown_path_is_the_404_envelope_even_with_a_staff_session(method, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)  # a session cookie: Django's CSRF check would answer HTML 403
    body = {} if method == "get" else {"data": "{}", "content_type": "application/json"}

    for path in ("/t2mobile/nothing-here", "/t2mobile/"):
        envelope(getattr(client, method)(path, **body), 404, "NOT_FOUND")


def test_an_over_long_path_or_query_is_the_414_envelope(api):
    envelope(api.get("/t2mobile/orders/" + "T" * 5000), 414, "URI_TOO_LONG")
    envelope(api.get("/t2mobile/events", {"type": "ORDER_FULFILLED," * 400}), 414, "URI_TOO_LONG")
    assert api.get("/t2mobile/events", {"type": "ORDER_FULFILLED," * 100}).status_code != 414


def test_the_docs_sign_in_pointer_brings_staff_back_to_the_docs(client, django_user_model):
    django_user_model.objects.create_user(username="olu", password="Olu-ops-2026-docs", is_staff=True)
    sign_in = client.get("/t2mobile/docs/", HTTP_ACCEPT="text/html").json()["details"]["signIn"][0]

    landed = client.post(sign_in, {"username": "olu", "password": "Olu-ops-2026-docs"}, follow=True)

    assert landed.redirect_chain[-1][0] == "/t2mobile/docs/"
    assert landed.status_code == 200 and b"swagger" in landed.content.lower()
