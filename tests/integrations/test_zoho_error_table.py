"""The table of Zoho's answers in docs/zoho.md ("Errors"), one test row per table row: each answer,
shaped as Zoho documents its error bodies (``code`` and ``message``), stubbed with ``responses``,
raises the kind the table names (issue 26, point 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import responses

from integrations.zoho.client import ZohoClient
from integrations.zoho.errors import (
    ZohoAuthError,
    ZohoAuthWaitError,
    ZohoPermanentError,
    ZohoTransientError,
    ZohoWaitError,
)
from tests.integrations.test_zoho_client import API_BASE, token_ok

pytestmark = pytest.mark.django_db

ROWS = [
    # (row of the table, status, body or exception, the kind raised)
    ("no answer: connection error", None, requests.ConnectionError("refused"), ZohoTransientError),
    ("no answer: timeout", None, requests.ReadTimeout("read timed out"), ZohoTransientError),
    ("429, whatever its code", 429, {"code": 45, "message": "limit"}, ZohoWaitError),
    ("429 without a code", 429, {"message": "Too many requests"}, ZohoWaitError),
    ("code 4820 at another status", 400, {"code": 4820, "message": "slow down"}, ZohoTransientError),
    ("5xx", 503, {"code": 1000, "message": "Internal error"}, ZohoTransientError),
    ("408", 408, {"code": 1000, "message": "timeout"}, ZohoTransientError),
    ("409", 409, {"code": 1000, "message": "conflict"}, ZohoTransientError),
    ("423", 423, {"code": 1000, "message": "locked"}, ZohoTransientError),
    ("a 2xx whose body is not JSON", 200, "<html>ok</html>", ZohoTransientError),
    ("401 again after the one refresh", 401, {"code": 57, "message": "not authorized"}, ZohoAuthWaitError),
    ("401 with another code", 401, {"code": 1234, "message": "not authorized"}, ZohoAuthError),
    ("403", 403, {"code": 1000, "message": "organisation refused"}, ZohoAuthError),
    ("400 with a code", 400, {"code": 1002, "message": "Item does not exist."}, ZohoPermanentError),
    ("404 with a code", 404, {"code": 1002, "message": "Item does not exist."}, ZohoPermanentError),
    ("400 without a code", 400, {"message": "Bad request"}, ZohoTransientError),
    ("405", 405, {"code": 5, "message": "method"}, ZohoTransientError),
    ("410", 410, {"code": 5, "message": "gone"}, ZohoTransientError),
    ("422", 422, {"code": 2, "message": "unprocessable"}, ZohoTransientError),
    ("a 2xx with a non-zero code", 200, {"code": 9, "message": "odd"}, ZohoTransientError),
]


@pytest.mark.parametrize(("row", "status", "answer", "kind"), ROWS, ids=[row[0] for row in ROWS])
def test_each_row_of_the_error_table(zoho_settings, row, status, answer, kind):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        token_ok(rsps)
        if status is None:
            rsps.get(f"{API_BASE}/items/1", body=answer)
        elif isinstance(answer, dict):
            rsps.get(f"{API_BASE}/items/1", status=status, json=answer)
        else:
            rsps.get(f"{API_BASE}/items/1", status=status, body=answer)
        with pytest.raises(ZohoTransientError if kind is ZohoTransientError else kind) as caught:
            ZohoClient.from_settings().item_get(item_id="1")

    assert isinstance(caught.value, kind)
    if kind is ZohoTransientError:  # the plain kind: neither a wait nor an auth outage nor permanent
        assert not isinstance(caught.value, ZohoWaitError | ZohoAuthError)


def test_the_table_in_the_docs_has_these_rows():
    text = (Path(__file__).resolve().parents[2] / "docs" / "zoho.md").read_text()
    table = text[text.index("## Errors") :].split("\n\n")[1]
    for needle in ("429, whatever its code", "400 or 404 with a non-zero `code`", "any other 4xx", "403", "5xx"):
        assert needle in table, needle
