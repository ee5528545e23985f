# ruff: noqa: F811  (the zoho_sandbox fixture imported from tests.zoho_fixtures is used as an argument)
"""The counters of /metrics go up where the event happens, by bounded labels (one process here; the
multiprocess sum is in tests/faults/test_metrics_multiprocess.py)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from integrations.zoho.client import ZohoClient
from integrations.zoho.errors import ZohoError
from orders.models import Order
from orders.transitions import order_mark_failed
from tests.conftest import order_payload
from tests.zoho_fixtures import free_port, zoho_sandbox  # noqa: F401

pytestmark = pytest.mark.django_db

TOKEN = "scrape-secret"
ROOT = Path(__file__).resolve().parents[2]


def scrape() -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) → value."""
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(autouse=True)
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def post_order(api, order_id: str):
    return api.post(
        "/t2mobile/fulfilment",
        data=json.dumps(order_payload(orderId=order_id)),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"key-{order_id}",
    )


def test_an_accepted_order_counts_once_and_its_replay_not_at_all(
    api, partner, product, django_capture_on_commit_callbacks
):
    before = value(scrape(), "t2m_orders_accepted_total", partner=partner.partner_id)

    with django_capture_on_commit_callbacks(execute=True):
        first = post_order(api, "MC-1")
    with django_capture_on_commit_callbacks(execute=True):
        replay = post_order(api, "MC-1")

    assert first.status_code == 202 and replay.headers.get("Idempotent-Replayed") == "true"
    assert value(scrape(), "t2m_orders_accepted_total", partner=partner.partner_id) == before + 1


def test_a_failed_order_counts_as_finished_failed(api, partner, product, django_capture_on_commit_callbacks):
    post_order(api, "MC-2")
    before = value(scrape(), "t2m_orders_finished_total", partner=partner.partner_id, status="FAILED")

    with django_capture_on_commit_callbacks(execute=True):
        order_mark_failed(order=Order.objects.get(order_id="MC-2"), reason="test")
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_failed(order=Order.objects.get(order_id="MC-2"), reason="again")  # already FAILED: no change

    after = value(scrape(), "t2m_orders_finished_total", partner=partner.partner_id, status="FAILED")
    assert after == before + 1


def test_requests_are_counted_by_url_pattern_never_by_the_raw_path(api):
    hostile = [secrets.token_hex(8) for _ in range(3)]
    before = scrape()

    for token in hostile:
        api.get(f"/t2mobile/orders/{token}")
        Client().get(f"/no-such-{token}")

    after = scrape()
    detail = ("t2m_http_requests_total", {"view": "order-detail", "method": "GET", "status": "404"})
    unmatched = ("t2m_http_requests_total", {"view": "unmatched", "method": "GET", "status": "404"})
    for name, labels in (detail, unmatched):
        assert value(after, name, **labels) == value(before, name, **labels) + 3
    assert value(after, "t2m_http_request_seconds_count", view="order-detail") >= 3
    labels_seen = " ".join(str(labels) for _, labels in after)
    assert not any(token in labels_seen for token in hostile)


def test_an_unknown_method_is_one_label_not_one_per_verb(api):
    before = value(scrape(), "t2m_http_requests_total", view="health-live", method="other", status="405")

    Client().generic("BREW", "/t2mobile/health/live")

    after = value(scrape(), "t2m_http_requests_total", view="health-live", method="other", status="405")
    assert after == before + 1


def test_zoho_calls_are_counted_by_endpoint_and_outcome(zoho_sandbox):
    before = scrape()

    ZohoClient.from_settings().sales_order_find_by_number(number="SO-NONE-1")

    after = scrape()
    for endpoint in ("salesorders", "oauth_token"):
        seen = value(after, "t2m_zoho_calls_total", endpoint=endpoint, outcome="2xx")
        assert seen >= value(before, "t2m_zoho_calls_total", endpoint=endpoint, outcome="2xx") + 1
    assert not any("SO-NONE-1" in str(labels) for _, labels in after)


def test_zoho_unreachable_counts_as_error(settings):

    settings.ZOHO_ACCOUNTS_URL = f"http://127.0.0.1:{free_port()}"
    before = value(scrape(), "t2m_zoho_calls_total", endpoint="oauth_token", outcome="error")

    with pytest.raises(ZohoError):
        ZohoClient.from_settings().sales_order_get(salesorder_id="1")

    assert value(scrape(), "t2m_zoho_calls_total", endpoint="oauth_token", outcome="error") == before + 1


def test_a_multiprocess_directory_named_after_prometheus_client_was_imported_is_refused(tmp_path):
    """prometheus_client picks its mode at import: a variable set later would leave the process
    counting alone, unseen by /metrics; the instruments refuse to load instead."""
    late = (
        "import os, prometheus_client; "
        f"os.environ['PROMETHEUS_MULTIPROC_DIR'] = {str(tmp_path)!r}; "
        "import core.instruments"
    )
    on_time = "import core.instruments as i; print(i.MULTIPROCESS)"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "dir")}
    env_without = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}

    refused = subprocess.run([sys.executable, "-c", late], cwd=ROOT, env=env_without, capture_output=True, text=True)
    accepted = subprocess.run([sys.executable, "-c", on_time], cwd=ROOT, env=env, capture_output=True, text=True)

    assert refused.returncode != 0 and "set after prometheus_client was imported" in refused.stderr
    assert accepted.stdout.strip() == "True" and (tmp_path / "dir").is_dir()


def test_an_empty_multiproc_dir_is_unset_and_writes_no_file_into_the_working_directory(tmp_path):
    """``PROMETHEUS_MULTIPROC_DIR=`` in an env file: prometheus_client alone would count into files in
    the current directory (it tests only that the name is present)."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 't2mobile_portal.settings_test'; django.setup(); "
        "from core import instruments; instruments.HTTP_REQUEST_SECONDS.labels('x').observe(0.1); "
        "instruments.ORDERS_ACCEPTED.labels('P').inc(); print(instruments.MULTIPROCESS)"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []
