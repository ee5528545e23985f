"""Hostile input never gives a 500 (issue 11, item 5): a table of requests an attacker or a broken
client sends, against every endpoint, each answered with the contract's 4xx envelope.

The reported three: a lone surrogate (``"\\ud800"``) anywhere in a body (the idempotency fingerprint
raised ``UnicodeEncodeError``), JSON nested thousands of levels deep (``RecursionError``, in a body
and in an ``orders`` cursor), and NUL characters, which PostgreSQL refuses in text and jsonb.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import order_payload
from tests.zoho_fixtures import MAIL_LITE

pytestmark = pytest.mark.django_db

ENVELOPE_KEYS = {"success", "errorCode", "message", "details", "requestId"}


def body_with(**fields) -> str:
    return json.dumps(order_payload(**fields))


def raw_body_with(name: str, raw_json_value: str) -> str:
    """The order body with one field's JSON text replaced verbatim (for escapes json.dumps won't write)."""
    body = order_payload()
    body[name] = "__RAW__"
    return json.dumps(body).replace('"__RAW__"', raw_json_value)


def cursor_of(raw_json: str) -> str:
    return base64.urlsafe_b64encode(raw_json.encode()).decode().rstrip("=")


DEEP = 5000
DEEP_OBJECT = '{"a":' * DEEP + "1" + "}" * DEEP
DEEP_ARRAY = "[" * 50_000 + "]" * 50_000

# (id, body, expected status, expected errorCode); POST /t2mobile/fulfilment, Content-Type JSON
BODIES = [
    ("lone-surrogate-in-name", raw_body_with("customerName", '"Ada \\ud800"'), 400, "MALFORMED_JSON"),
    ("lone-low-surrogate", raw_body_with("customerId", '"\\udfff"'), 400, "MALFORMED_JSON"),
    ("lone-surrogate-in-metadata-key", raw_body_with("metadata", '{"\\ud800": "x"}'), 400, "MALFORMED_JSON"),
    ("lone-surrogate-in-unknown-field", raw_body_with("extra", '["\\ud83d"]'), 400, "MALFORMED_JSON"),
    ("surrogate-pair-is-fine-but-not-a-valid-name", raw_body_with("customerName", '"Ada \\ud83d\\ude00"'), 202, None),
    ("deep-object", DEEP_OBJECT, 400, "MALFORMED_JSON"),
    ("deep-array-in-body", raw_body_with("extra", "[" * 3000 + "]" * 3000), 400, "MALFORMED_JSON"),
    ("deep-metadata", raw_body_with("metadata", '{"a":' * 3000 + '"x"' + "}" * 3000), 400, "MALFORMED_JSON"),
    ("nul-in-metadata-key", raw_body_with("metadata", '{"a\\u0000b": "x"}'), 400, "VALIDATION_ERROR"),
    ("nul-in-metadata-value", raw_body_with("metadata", '{"a": "x\\u0000"}'), 400, "VALIDATION_ERROR"),
    ("nul-in-tenure-echoed-by-choice-error", raw_body_with("tenure", '"X\\u0000"'), 400, "VALIDATION_ERROR"),
    ("nul-in-order-id", raw_body_with("orderId", '"T2M\\u0000"'), 400, "VALIDATION_ERROR"),
    ("nul-in-unknown-field", raw_body_with("extra", '"\\u0000"'), 400, "VALIDATION_ERROR"),
    ("huge-integer", raw_body_with("quantity", "9" * 5000), 400, "MALFORMED_JSON"),
    ("overflowing-float", raw_body_with("quantity", "1e400"), 400, "VALIDATION_ERROR"),
    ("nan", raw_body_with("quantity", "NaN"), 400, "MALFORMED_JSON"),
    # a duplicate key: a proxy reading the first orderId and we the last would see two orders
    ("duplicate-key", body_with(orderId="T2M-FIRST")[:-1] + ', "orderId": "T2M-SECOND"}', 400, "MALFORMED_JSON"),
    ("duplicate-metadata-key", raw_body_with("metadata", '{"a": "x", "a": "y"}'), 400, "MALFORMED_JSON"),
    ("negative-quantity", raw_body_with("quantity", "-1"), 400, "VALIDATION_ERROR"),
    ("big-quantity", raw_body_with("quantity", str(2**63)), 400, "VALIDATION_ERROR"),
    ("float-quantity", raw_body_with("quantity", "1.0"), 400, "VALIDATION_ERROR"),
    ("string-quantity", raw_body_with("quantity", '"1"'), 400, "VALIDATION_ERROR"),
    ("bool-quantity", raw_body_with("quantity", "true"), 400, "VALIDATION_ERROR"),
    ("object-order-id", raw_body_with("orderId", '{"$gt": ""}'), 400, "VALIDATION_ERROR"),
    ("array-email", raw_body_with("customerEmail", '["a@example.com"]'), 400, "VALIDATION_ERROR"),
    ("number-product", raw_body_with("productId", MAIL_LITE["item_id"]), 400, "VALIDATION_ERROR"),
    ("null-everything", json.dumps(dict.fromkeys(order_payload())), 400, "VALIDATION_ERROR"),
    ("metadata-array", raw_body_with("metadata", '["x"]'), 400, "VALIDATION_ERROR"),
    ("metadata-nested", raw_body_with("metadata", '{"a": {"b": "c"}}'), 400, "VALIDATION_ERROR"),
    ("metadata-21-keys", body_with(metadata={f"k{n}": "v" for n in range(21)}), 400, "VALIDATION_ERROR"),
    ("metadata-long-value", body_with(metadata={"k": "v" * 501}), 400, "VALIDATION_ERROR"),
    ("huge-name", body_with(customerName="A" * 60_000), 400, "VALIDATION_ERROR"),
    ("huge-order-id", body_with(orderId="T" * 60_000), 400, "VALIDATION_ERROR"),
    ("name-with-control-chars", body_with(customerName="Ada\x1b[31m"), 400, "VALIDATION_ERROR"),
    ("name-bidi-override", body_with(customerName="Ada \u202eiboO"), 400, "VALIDATION_ERROR"),
    ("customer-id-newline", body_with(customerId="CUST-1\nCUST-2"), 400, "VALIDATION_ERROR"),
    ("customer-id-bidi-override", body_with(customerId="CUST\u202e1"), 400, "VALIDATION_ERROR"),
    ("customer-id-zero-width-joiners", body_with(customerId="\u200d" * 64), 400, "VALIDATION_ERROR"),
    ("product-id-tab", body_with(productId="4815\t000"), 400, "VALIDATION_ERROR"),
    ("phone-zero-width", body_with(customerPhone="+234803\u200b1234567"), 400, "VALIDATION_ERROR"),
    ("metadata-value-bidi", body_with(metadata={"campaign": "DEC\u202ePROMO"}), 400, "VALIDATION_ERROR"),
    ("metadata-key-newline", body_with(metadata={"a\nb": "v"}), 400, "VALIDATION_ERROR"),
    ("email-header-injection", body_with(customerEmail="a@example.com\r\nBcc: x@example.com"), 400, "VALIDATION_ERROR"),
    ("sql-ish-order-id", body_with(orderId="1' OR '1'='1"), 400, "VALIDATION_ERROR"),
    ("renewal-of-self-garbage", body_with(type="RENEWAL", renewalOf="\u0000"), 400, "VALIDATION_ERROR"),
    ("bad-type", body_with(type="FREE"), 400, "VALIDATION_ERROR"),
    ("top-level-array", "[]", 400, "MALFORMED_JSON"),
    ("top-level-string", '"x"', 400, "MALFORMED_JSON"),
    ("top-level-null", "null", 400, "MALFORMED_JSON"),
    ("top-level-number", "1", 400, "MALFORMED_JSON"),
    ("empty-body", "", 400, "MALFORMED_JSON"),
    ("truncated", '{"orderId": "T2M', 400, "MALFORMED_JSON"),
    ("trailing-garbage", "{} {}", 400, "MALFORMED_JSON"),
    ("bom-prefixed", "\ufeff" + body_with(), 400, "MALFORMED_JSON"),
]


@pytest.mark.parametrize("body, status, code", [case[1:] for case in BODIES], ids=[case[0] for case in BODIES])
def test_hostile_fulfilment_bodies_get_the_contract_answer(api, product, body, status, code):
    response = api.post(
        "/t2mobile/fulfilment",
        data=body.encode("utf-8", "surrogatepass"),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="hostile-1",
    )

    assert response.status_code == status, response.content[:500]
    if code:
        payload = response.json()
        assert set(payload) <= ENVELOPE_KEYS and payload["success"] is False
        assert payload["errorCode"] == code


def test_the_same_hostile_body_twice_is_answered_the_same_and_stored_safely(api, product):
    body = raw_body_with("tenure", '"X\\u0000"').encode()

    first = api.post("/t2mobile/fulfilment", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="nul")
    second = api.post("/t2mobile/fulfilment", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="nul")

    assert first.status_code == second.status_code == 400
    assert first.json()["errorCode"] == second.json()["errorCode"] == "VALIDATION_ERROR"


RAW_BODIES = [
    ("invalid-utf8", b'{"orderId": "\xff\xfe"}', "application/json", 400, "MALFORMED_JSON"),
    ("latin1-declared-utf16", b'{"a": 1}', "application/json; charset=utf-16", 400, "MALFORMED_JSON"),
    # Django ignores a charset it does not know and reads UTF-8: {} then lacks every field
    ("unknown-charset", b"{}", "application/json; charset=x-no-such-charset", 400, "VALIDATION_ERROR"),
    ("form-encoded", b"orderId=1", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("text-plain", b"{}", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("multipart", b"--x--", "multipart/form-data; boundary=x", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("json-lookalike", b"{}", "application/jsonx", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("no-content-type", b"{}", "", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("xml", b"<order/>", "application/xml", 415, "UNSUPPORTED_MEDIA_TYPE"),
]


@pytest.mark.parametrize(
    "body, content_type, status, code", [case[1:] for case in RAW_BODIES], ids=[case[0] for case in RAW_BODIES]
)
def test_odd_content_types_and_encodings_get_the_contract_answer(api, product, body, content_type, status, code):
    response = api.generic(
        "POST", "/t2mobile/fulfilment", data=body, content_type=content_type, HTTP_IDEMPOTENCY_KEY="hostile-2"
    )

    assert response.status_code == status, response.content[:500]
    assert response.json()["errorCode"] == code


@pytest.mark.parametrize(
    "key",
    ["", " ", '""', "k\x01y", "k\x7fy", "k\ty", "k" * 256, '"' + "k" * 256 + '"', "k\u00e9y", "k\x00y", "key\r\nX: 1"],
    ids=["empty", "space", "quoted-empty", "ctrl", "del", "tab", "256", "quoted-256", "latin1", "nul", "crlf"],
)
def test_bad_idempotency_keys_are_400_idempotency_key_missing(api, product, key):
    response = api.post(
        "/t2mobile/fulfilment", data=body_with(), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 400 and response.json()["errorCode"] == "IDEMPOTENCY_KEY_MISSING"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer \x00abc", "Bearer " + "k" * 10_000, "Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "bearer x\x00y", "\u00e9"],
    ids=["nul", "huge", "basic", "bare", "spaces", "nul-lower", "latin1"],
)
@pytest.mark.parametrize(
    "path", ["/t2mobile/products", "/t2mobile/orders", "/t2mobile/events", "/t2mobile/health", "/t2mobile/schema/"]
)
def test_hostile_authorization_headers_are_401(client, authorization, path):
    response = client.get(path, HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401 and response.json()["errorCode"] == "UNAUTHORIZED"


CURSORS = [
    "garbage!!",
    "x" * 3_000,  # longer URLs are 414 URI_TOO_LONG (test_envelope.py)
    cursor_of("[" * 1000 + "]" * 1000),  # deeper than Python's parser goes without RecursionError
    cursor_of('{"before":' * 200 + "1" + "}" * 200),
    cursor_of('{"before": "1"}'),
    cursor_of('{"before": true}'),
    cursor_of('{"before": 1e400}'),
    cursor_of('{"before": ' + "9" * 2000 + "}"),  # longer is a 414 (the URL's limit)
    cursor_of('{"before": "\\ud800"}'),
    cursor_of("[]"),
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    "%00",
]


@pytest.mark.parametrize("path", ["/t2mobile/orders", "/t2mobile/events"])
@pytest.mark.parametrize("cursor", CURSORS, ids=[f"cursor-{n}" for n in range(len(CURSORS))])
def test_bad_cursors_are_400_validation_error(api, cursor, path):
    response = api.get(path, {"cursor": cursor})

    assert response.status_code == 400 and response.json()["errorCode"] == "VALIDATION_ERROR"


def test_a_cursor_before_a_huge_id_is_just_an_empty_page(api):
    response = api.get("/t2mobile/orders", {"cursor": cursor_of('{"before": ' + str(2**70) + "}")})

    assert response.status_code == 200 and response.json()["orders"] == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=201",
        "limit=abc",
        "limit=1e9",
        "limit=" + "9" * 4000,
        "status=BOGUS",
        "status=%00",
        "customerId=%00",
        "customerId=" + "c" * 65,
        "updatedSince=not-a-date",
        "updatedSince=9999-99-99",
        "updatedSince=%00",
        "updatedSince=" + "2" * 4000,
        "cursor=%00",
    ],
)
def test_bad_order_list_filters_are_400_validation_error(api, query):
    response = api.get(f"/t2mobile/orders?{query}")

    assert response.status_code == 400 and response.json()["errorCode"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("query", ["updatedSince=0001-01-01T00:00:00Z", "updatedSince=9999-12-31T23:59:59Z"])
def test_extreme_times_are_answered_without_a_server_error(api, query):
    response = api.get(f"/t2mobile/orders?{query}")

    # 9999-12-31 in Africa/Lagos is past datetime.max: DRF refuses it as a bad time
    assert response.status_code in (200, 400)
    assert response.status_code == 200 or response.json()["errorCode"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/t2mobile/orders/%00", 400, "VALIDATION_ERROR"),
        ("/t2mobile/orders/T2M%00X", 400, "VALIDATION_ERROR"),
        ("/t2mobile/orders/%ff%fe", 404, "ORDER_NOT_FOUND"),
        ("/t2mobile/orders/%ED%A0%80", 404, "ORDER_NOT_FOUND"),  # an encoded surrogate
        ("/t2mobile/orders/" + "x" * 200, 404, "ORDER_NOT_FOUND"),
        ("/t2mobile/orders/" + "x" * 5000, 414, "URI_TOO_LONG"),
        ("/t2mobile/orders/..%2F..%2Fadmin", 404, "NOT_FOUND"),
        ("/t2mobile/%00", 400, "VALIDATION_ERROR"),
        ("/t2mobile/products?%00=%00", 400, "VALIDATION_ERROR"),
    ],
)
def test_hostile_paths_get_the_envelope(api, path, status, code):
    response = api.get(path)

    assert response.status_code == status, response.content[:300]
    assert response.json()["errorCode"] == code


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_IF_NONE_MATCH": "W/" + '"x"' * 5000},
        {"HTTP_IF_NONE_MATCH": "\x00"},
        {"HTTP_X_REQUEST_ID": "\x00" * 10},
        {"HTTP_X_REQUEST_ID": "r" * 10_000},
        {"HTTP_ACCEPT": "\x00/\x00"},
        {"HTTP_ACCEPT_ENCODING": "gzip;q=" + "9" * 5000},
    ],
    ids=["inm-huge", "inm-nul", "rid-nul", "rid-huge", "accept-nul", "accept-encoding-huge"],
)
def test_hostile_headers_on_the_catalogue_are_answered(api, product, headers):
    response = api.get("/t2mobile/products", **headers)

    assert response.status_code == 200
    assert response["X-Request-ID"] and len(response["X-Request-ID"]) <= 128
