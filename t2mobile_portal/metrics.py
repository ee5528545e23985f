"""Prometheus metrics at ``/metrics`` (prometheus-client), read from the database at scrape time.

Figures come from the tables rather than from in-process counters, so every gunicorn worker and
Celery worker on every machine reports the same numbers without a multiprocess directory. The
endpoint answers only with ``Authorization: Bearer <METRICS_TOKEN>`` and is 404 when the setting is
empty.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F
from django.http import HttpResponse, HttpResponseNotFound
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from integrations.zoho.budget import zoho_daily_usage
from orders.models import Fulfilment, Order
from t2mobile_portal.health import health_report
from webhooks.models import WebhookAttempt, WebhookLog

LATENCY_BUCKETS = (1, 2, 5, 10, 30, 60, 300, 900, 3600)
RECENT = timedelta(hours=24)


class GatewayCollector:
    def collect(self):
        orders = GaugeMetricFamily("t2m_orders", "Orders by status", labels=["status"])
        counts = dict(Order.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        for status in Order.Status.values:
            orders.add_metric([status], counts.get(status, 0))
        yield orders

        webhooks = GaugeMetricFamily("t2m_webhook_events", "Webhook events by status", labels=["status"])
        counts = dict(WebhookLog.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        for status in WebhookLog.Status.values:
            webhooks.add_metric([status], counts.get(status, 0))
        yield webhooks

        since = timezone.now() - RECENT
        attempts = GaugeMetricFamily(
            "t2m_webhook_attempts_24h", "Webhook delivery attempts in the last 24 h by outcome", labels=["outcome"]
        )
        outcome = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "error": 0}
        by_code = (
            WebhookAttempt.objects.filter(attempted_at__gte=since)
            .values_list("status_code")
            .annotate(n=Count("id"))
            .values_list("status_code", "n")
        )
        for code, n in by_code:
            key = f"{code // 100}xx" if code else "error"
            outcome[key] = outcome.get(key, 0) + n
        for name, value in outcome.items():
            attempts.add_metric([name], value)
        yield attempts

        latency = ExpressionWrapper(F("starts_at") - F("order__created_at"), output_field=DurationField())
        seconds = [
            d.total_seconds()
            for d in Fulfilment.objects.filter(starts_at__gte=since, order__type=Order.Type.NEW)
            .annotate(latency=latency)
            .values_list("latency", flat=True)
            if d is not None
        ]
        buckets = [(str(b), sum(1 for s in seconds if s <= b)) for b in LATENCY_BUCKETS] + [("+Inf", len(seconds))]
        yield HistogramMetricFamily(
            "t2m_provisioning_latency_seconds_24h",
            "Accept to fulfilled, orders fulfilled in the last 24 h",
            buckets=buckets,
            sum_value=sum(seconds),
        )

        # One operators' readout per scrape: the shared checks, the queues and the Zoho budget.
        checks = health_report()["checks"]
        usage = checks.get("zohoBudget") or zoho_daily_usage()
        zoho = GaugeMetricFamily("t2m_zoho_calls_today", "Zoho API calls today (against ZOHO_DAILY_LIMIT)")
        zoho.add_metric([], usage["calls"])
        yield zoho
        yield from _operators_figures(checks)


def _operators_figures(checks: dict):
    """The gateway-wide figures of health that partners no longer see (their health is their own)."""
    for name, key, help_text in (
        ("t2m_orders_stuck", "stuckOrders", "Orders PROCESSING for over 15 minutes, all partners"),
        ("t2m_webhook_events_waiting", "webhooksWaiting", "Webhook events due and not yet sent, all partners"),
    ):
        if key in checks:
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], checks[key])
            yield gauge
    if isinstance(checks.get("queueDepth"), dict):
        queues = GaugeMetricFamily("t2m_queue_depth", "Jobs waiting in each Celery queue", labels=["queue"])
        for queue, depth in checks["queueDepth"].items():
            queues.add_metric([queue], depth)
        yield queues
    for name, up, help_text in (
        ("t2m_zoho_paused", "zohoPaused" in checks, "1 while Zoho calls are paused (a limit answer, the daily cap)"),
        ("t2m_zoho_credentials_failing", checks.get("zoho") == "failing", "1 while Zoho refuses our credentials"),
        ("t2m_zoho_data_centre_mismatch", checks.get("zohoDataCentre") == "mismatch", "1: wrong Zoho data centre"),
    ):
        gauge = GaugeMetricFamily(name, help_text)
        gauge.add_metric([], 1 if up else 0)
        yield gauge


def metrics_view(request):
    token = settings.METRICS_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        return HttpResponseNotFound()
    registry = CollectorRegistry()
    registry.register(GatewayCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
