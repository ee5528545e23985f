"""Prometheus metrics (the state gauges read at scrape time, this process's counters), and the
health figures ops read (the operators' readout,
``health_report``; a partner's ``GET /t2mobile/health`` is in test_partner_health.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from integrations.zoho.budget import zoho_budget
from orders.models import Order
from t2mobile_portal.health import health_report
from tests.conftest import order_payload

pytestmark = pytest.mark.django_db


def place(api, order_id):
    response = api.post(
        "/t2mobile/fulfilment",
        data=json.dumps(order_payload(orderId=order_id)),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=order_id,
    )
    assert response.status_code == 202


def test_metrics_are_404_without_the_token(settings, db):
    settings.METRICS_TOKEN = "scrape-secret"

    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404


def test_metrics_report_orders_by_status(settings, api, product):
    settings.METRICS_TOKEN = "scrape-secret"
    place(api, "M1")
    place(api, "M2")
    Order.objects.filter(order_id="M2").update(status="FAILED")

    body = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()

    assert 't2m_orders{status="PROCESSING"} 1.0' in body
    assert 't2m_orders{status="FAILED"} 1.0' in body
    assert "# TYPE t2m_orders_accepted_total counter" in body and "# TYPE t2m_provisioning_seconds histogram" in body
    assert "t2m_metrics_multiprocess 0.0" in body  # the suite runs without PROMETHEUS_MULTIPROC_DIR
    assert "_24h" not in body and "t2m_zoho_calls_today" not in body  # no windows baked into names


def test_metrics_carry_the_gateway_wide_figures_partners_no_longer_see(settings, api, product):
    settings.METRICS_TOKEN = "scrape-secret"
    place(api, "M3")
    Order.objects.filter(order_id="M3").update(
        created_at=timezone.now() - timedelta(hours=2), updated_at=timezone.now() - timedelta(hours=1)
    )
    zoho_budget().pause(60, reason="Zoho answered a limit (HTTP 429, code 44)")

    body = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()

    assert "t2m_orders_processing_stuck 1.0" in body
    assert float(body.split("\nt2m_orders_processing_oldest_seconds ")[1].split()[0]) >= 7000
    assert "t2m_zoho_paused 1.0" in body and "t2m_zoho_credentials_failing 0.0" in body
    assert 't2m_queue_depth{queue="provisioning"}' in body


def test_operators_readout_reports_zoho_budget_and_degrades_at_80_percent(db, settings, monkeypatch):
    settings.ZOHO_DAILY_LIMIT = 10
    monkeypatch.setattr("integrations.zoho.budget.zoho_calls_today", lambda: 8)

    report = health_report()

    assert report["checks"]["zohoBudget"] == {
        "calls": 8,
        "limit": 10,
        "share": 0.8,
        "warning": True,
        "scope": "all processes",
    }
    assert report["status"] == "degraded"


def test_operators_readout_is_ok_under_budget(db):
    report = health_report()

    assert report["status"] == "ok" and report["checks"]["zohoBudget"]["warning"] is False
    assert set(report["checks"]["queueDepth"]) == {"provisioning", "webhooks", "default"}


def test_a_partner_is_not_shown_the_zoho_usage_even_at_80_percent(api, settings, monkeypatch):
    settings.ZOHO_DAILY_LIMIT = 10
    monkeypatch.setattr("integrations.zoho.budget.zoho_calls_today", lambda: 8)

    body = api.get("/t2mobile/health").json()

    assert "zohoBudget" not in body["checks"] and body["checks"]["zoho"] == "ok"
    assert body["status"] == "ok"
