"""The OpenAPI schema stays in step with the contract (../shared/spec/partner-api.md).

Expected paths, fields, headers and error codes are read from the contract itself when it is
beside the repo (as in CI), and from the list below otherwise, so renaming a field or dropping an
error code in the code fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from drf_spectacular.generators import SchemaGenerator

from core.errors import ERROR_CODES

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "spec" / "partner-api.md"

EXPECTED_ERRORS = {
    "VALIDATION_ERROR": 400,
    "MALFORMED_JSON": 400,
    "IDEMPOTENCY_KEY_MISSING": 400,
    "UNKNOWN_PRODUCT": 400,
    "TENURE_NOT_OFFERED": 400,
    "RENEWAL_TARGET_NOT_FOUND": 400,
    "UNAUTHORIZED": 401,
    "ORDER_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "DUPLICATE_ORDER": 409,
    "REQUEST_IN_PROGRESS": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
    "EVENT_NOT_FOUND": 404,
}
#: Codes of the contract whose endpoints are not built yet, with the issue that builds them: the
#: code and its documentation are checked once that issue takes the entry out.
NOT_YET_BUILT: dict[str, str] = {}
#: Codes the gateway answers beyond the contract's table, with the issue that added them.
BEYOND_CONTRACT: dict[str, int] = {"URI_TOO_LONG": 414}  # issue 21: an over-long path or query
EXPECTED_REQUEST_FIELDS = {
    "orderId",
    "productId",
    "tenure",
    "quantity",
    "customerId",
    "customerName",
    "customerEmail",
    "customerPhone",
    "type",
    "renewalOf",
    "metadata",
}
EXPECTED_ORDER_FIELDS = {
    "success",
    "orderId",
    "status",
    "type",
    "productId",
    "tenure",
    "quantity",
    "customerId",
    "activationReference",
    "salesOrderId",
    "startsAt",
    "expiresAt",
    "failureReason",
    "createdAt",
    "updatedAt",
}
EXPECTED_ACCEPTED_FIELDS = {"success", "orderId", "status", "activationReference", "statusUrl"}
ENDPOINTS = [
    ("get", "/t2mobile/products"),
    ("post", "/t2mobile/fulfilment"),
    ("get", "/t2mobile/orders/{orderId}"),
    ("get", "/t2mobile/orders"),
    ("get", "/t2mobile/health/live"),
    ("get", "/t2mobile/health"),
    ("get", "/t2mobile/events"),
    ("get", "/t2mobile/events/{id}"),
    ("post", "/t2mobile/events/{id}/resend"),
    ("post", "/t2mobile/events/recover"),
    ("post", "/t2mobile/webhooks/test"),
]
EXPECTED_EVENT_FIELDS = {
    "id",
    "type",
    "createdAt",
    "orderId",
    "deliveryStatus",
    "attempts",
    "lastAttemptAt",
    "nextAttemptAt",
    "event",
}
EXPECTED_ATTEMPT_FIELDS = {"attemptedAt", "durationMs", "statusCode", "error"}
EVENT_QUERY_PARAMETERS = {"cursor", "limit", "type", "orderId", "deliveryStatus", "createdSince", "createdBefore"}


def contract_errors() -> dict[str, int]:
    if not CONTRACT.exists():
        return EXPECTED_ERRORS
    rows = re.findall(r"^\| (\d{3}) \| ([A-Z_]+) \|", CONTRACT.read_text(), flags=re.MULTILINE)
    return {code: int(status) for status, code in rows}


def contract_request_fields() -> set[str]:
    if not CONTRACT.exists():
        return EXPECTED_REQUEST_FIELDS
    section = CONTRACT.read_text().split("## POST /t2mobile/fulfilment", 1)[1].split("###", 1)[0]
    return set(re.findall(r"^\| (\w+) \| (?!rule)", section, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def component(schema, ref_holder) -> dict:
    ref = ref_holder["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_contract_tables_are_what_this_test_expects():
    assert contract_errors() == EXPECTED_ERRORS
    assert contract_request_fields() == EXPECTED_REQUEST_FIELDS


def test_every_error_code_of_the_contract_exists_with_its_status():
    built = {code: status for code, status in contract_errors().items() if code not in NOT_YET_BUILT}
    assert ERROR_CODES == built | BEYOND_CONTRACT


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_every_endpoint_is_documented(schema, method, path):
    assert method in schema["paths"][path]


def test_every_error_code_is_documented_in_the_schema(schema):
    documented: dict[str, set[str]] = {}
    for item in schema["paths"].values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                if int(status) < 400:
                    continue  # the answers' own examples
                examples = response.get("content", {}).get("application/json", {}).get("examples", {})
                for example in examples.values():
                    documented.setdefault(example["value"]["errorCode"], set()).add(status)
    for code, status in (contract_errors() | BEYOND_CONTRACT).items():
        if code == "NOT_FOUND" or code in NOT_YET_BUILT:
            continue  # unknown paths have no operation to document them on
        assert str(status) in documented.get(code, set()), code


def test_request_body_fields_match_the_contract(schema):
    body = schema["paths"]["/t2mobile/fulfilment"]["post"]["requestBody"]
    properties = component(schema, body)["properties"]
    assert set(properties) == contract_request_fields()
    assert properties["tenure"]["$ref"] if "$ref" in properties["tenure"] else properties["tenure"]["enum"]


def test_accepted_and_order_bodies_match_the_contract(schema):
    accepted = component(schema, schema["paths"]["/t2mobile/fulfilment"]["post"]["responses"]["202"])
    order = component(schema, schema["paths"]["/t2mobile/orders/{orderId}"]["get"]["responses"]["200"])
    assert set(accepted["properties"]) == EXPECTED_ACCEPTED_FIELDS
    assert EXPECTED_ORDER_FIELDS <= set(order["properties"])


def test_contract_headers_are_documented(schema):
    post = schema["paths"]["/t2mobile/fulfilment"]["post"]
    assert {p["name"] for p in post["parameters"] if p["in"] == "header"} >= {"Idempotency-Key", "X-Request-ID"}
    assert "Idempotent-Replayed" in post["responses"]["202"]["headers"]
    assert "Retry-After" in post["responses"]["429"]["headers"]
    assert "WWW-Authenticate" in post["responses"]["401"]["headers"]
    assert "ETag" in schema["paths"]["/t2mobile/products"]["get"]["responses"]["200"]["headers"]
    for item in schema["paths"].values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                assert "X-Request-ID" in response["headers"]


def test_schema_and_docs_are_served_to_a_partner(api):
    schema_response = api.get("/t2mobile/schema/")
    docs_response = api.get("/t2mobile/docs/")

    assert schema_response.status_code == 200
    assert yaml.safe_load(schema_response.content)["info"]["title"]
    assert docs_response.status_code == 200


def test_schema_needs_a_key(client, db):
    assert client.get("/t2mobile/schema/").status_code == 401


def test_event_bodies_match_the_contract(schema):
    listing = component(schema, schema["paths"]["/t2mobile/events"]["get"]["responses"]["200"])
    item = schema["components"]["schemas"][listing["properties"]["events"]["items"]["$ref"].rsplit("/", 1)[1]]
    detail = component(schema, schema["paths"]["/t2mobile/events/{id}"]["get"]["responses"]["200"])
    attempt = schema["components"]["schemas"][detail["properties"]["attemptLog"]["items"]["$ref"].rsplit("/", 1)[1]]
    resend = component(schema, schema["paths"]["/t2mobile/events/{id}/resend"]["post"]["responses"]["202"])
    recover = component(schema, schema["paths"]["/t2mobile/events/recover"]["post"]["responses"]["202"])
    ping = component(schema, schema["paths"]["/t2mobile/webhooks/test"]["post"]["responses"]["202"])

    assert set(listing["properties"]) == {"success", "events", "nextCursor"}
    assert set(item["properties"]) == EXPECTED_EVENT_FIELDS
    assert set(detail["properties"]) == EXPECTED_EVENT_FIELDS | {"success", "attemptLog"}
    assert set(attempt["properties"]) == EXPECTED_ATTEMPT_FIELDS
    assert set(resend["properties"]) == {"success", "id", "deliveryStatus"}
    assert set(recover["properties"]) == {"success", "requeued"}
    assert set(ping["properties"]) == {"success", "id"}


def test_event_list_parameters_and_recover_body_are_documented(schema):
    listing = schema["paths"]["/t2mobile/events"]["get"]
    recover = schema["paths"]["/t2mobile/events/recover"]["post"]

    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} == EVENT_QUERY_PARAMETERS
    assert set(component(schema, recover["requestBody"])["properties"]) == {"since", "until"}
    resend_404 = schema["paths"]["/t2mobile/events/{id}/resend"]["post"]["responses"]["404"]
    examples = resend_404["content"]["application/json"]["examples"].values()
    assert {example["value"]["errorCode"] for example in examples} == {"EVENT_NOT_FOUND"}
    assert "Idempotent-Replayed" not in recover["responses"]["202"]["headers"]
