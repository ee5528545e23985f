"""``GET /t2mobile/health`` shows the calling partner its own figures (stuck orders, webhooks waiting,
its endpoint) and the shared checks as ``ok`` or ``down`` only; the global figures stay with the
operators (``health_report``, ``/metrics``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.zoho.budget import Pause
from orders.models import Order
from partners.models import Partner
from partners.services import api_key_create
from t2mobile_portal.health import health_report
from tests.factories import OrderFactory, PartnerFactory, WebhookLogFactory
from webhooks.models import WebhookEndpointState, WebhookLog

pytestmark = pytest.mark.django_db

GLOBAL_FIGURES = {"queueDepth", "zohoBudget", "zohoPaused", "zohoFailingSince", "zohoDataCentre"}


def client_of(partner: Partner) -> APIClient:
    _, plain = api_key_create(partner=partner, name="health test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def stuck(partner: Partner, count: int) -> None:
    """``count`` orders of ``partner`` in PROCESSING for an hour."""
    for _ in range(count):
        order = OrderFactory(partner=partner, status=Order.Status.PROCESSING)
        Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(hours=1))


def waiting(partner: Partner, count: int) -> None:
    """``count`` events of ``partner`` PENDING after a failed attempt (waiting for their retry)."""
    for _ in range(count):
        WebhookLogFactory(order=OrderFactory(partner=partner, status=Order.Status.FULFILLED), attempts=[503])


@pytest.fixture
def other(db) -> Partner:
    return PartnerFactory(
        partner_id="OTHERCO01", name="OtherCo", prefix="OTH", webhook_url="https://hooks.other.example/"
    )


def test_each_partner_sees_only_its_own_stuck_orders_webhooks_and_endpoint(partner, other):
    # Given T2Mobile has 2 stuck orders and 1 webhook waiting, OtherCo 3 and 4, and OtherCo's endpoint fails
    stuck(partner, 2)
    waiting(partner, 1)
    stuck(other, 3)
    waiting(other, 4)
    OrderFactory(partner=other, status=Order.Status.PROCESSING)  # fresh: not stuck
    failing_since = timezone.now() - timedelta(minutes=7)
    WebhookEndpointState.objects.create(partner=other, consecutive_failures=5, failing_since=failing_since)

    # When each asks for health
    mine = client_of(partner).get("/t2mobile/health").json()["checks"]
    theirs = client_of(other).get("/t2mobile/health").json()["checks"]

    # Then each sees its own figures and nothing of the other's
    assert (mine["stuckOrders"], mine["webhooksWaiting"]) == (2, 1)
    assert (theirs["stuckOrders"], theirs["webhooksWaiting"]) == (3, 4)
    assert mine["webhookEndpoint"]["status"] == "unconfigured" and mine["webhookEndpoint"]["consecutiveFailures"] == 0
    assert theirs["webhookEndpoint"]["status"] == "failing"
    assert theirs["webhookEndpoint"]["consecutiveFailures"] == 5
    assert theirs["webhookEndpoint"]["failingSince"] == failing_since.strftime("%Y-%m-%dT%H:%M:%SZ")
    # and the operators' readout still counts the whole gateway
    operators = health_report()["checks"]
    assert (operators["stuckOrders"], operators["webhooksWaiting"]) == (5, 5)


def test_a_partner_sees_the_shared_checks_as_up_or_down_and_no_global_figures(partner, settings):
    response = client_of(partner).get("/t2mobile/health")

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert {name: body["checks"][name] for name in ("database", "cache", "broker", "zoho")} == dict.fromkeys(
        ("database", "cache", "broker", "zoho"), "ok"
    )
    assert not GLOBAL_FIGURES & set(body["checks"])
    assert set(body["checks"]) == {
        "database",
        "cache",
        "broker",
        "zoho",
        "stuckOrders",
        "webhooksWaiting",
        "webhookEndpoint",
    }


def test_zoho_paused_is_down_for_a_partner_without_the_reason_or_the_usage(partner, monkeypatch):
    monkeypatch.setattr(
        "t2mobile_portal.health.zoho_paused", lambda: Pause("Zoho answered code 45 (daily limit)", 3600)
    )

    body = client_of(partner).get("/t2mobile/health").json()

    assert body["status"] == "degraded" and body["checks"]["zoho"] == "down"
    assert "code 45" not in str(body) and not GLOBAL_FIGURES & set(body["checks"])
    assert "code 45" in health_report()["checks"]["zohoPaused"]["reason"]


def test_a_disabled_endpoint_shows_since_when_and_why(partner):
    partner.webhook_url = "https://hooks.t2mobile.example/icontech"
    partner.save()
    disabled_at = timezone.now() - timedelta(hours=2)
    WebhookEndpointState.objects.create(
        partner=partner, consecutive_failures=1, disabled_at=disabled_at, disabled_reason="GONE"
    )

    endpoint = client_of(partner).get("/t2mobile/health").json()["checks"]["webhookEndpoint"]

    assert endpoint["status"] == "disabled" and endpoint["disabledReason"] == "GONE"
    assert endpoint["disabledAt"] == disabled_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_without_a_key_health_is_401_and_liveness_says_only_that_it_answers(partner, client):
    stuck(partner, 1)

    assert client.get("/t2mobile/health").status_code == 401
    live = client.get("/t2mobile/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}


def test_webhooks_waiting_counts_only_events_with_a_failed_attempt(partner):
    waiting(partner, 1)
    WebhookLogFactory(order=OrderFactory(partner=partner), status=WebhookLog.Status.PENDING)  # not tried yet

    assert client_of(partner).get("/t2mobile/health").json()["checks"]["webhooksWaiting"] == 1
