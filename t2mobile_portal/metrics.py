"""``/metrics``: Prometheus' text format, answered only with ``Authorization: Bearer <METRICS_TOKEN>``
(404 while the setting is empty).

Two kinds of figures:

- counters and histograms (``instruments.py``), incremented where each event happens in whichever
  process it happens in. With ``PROMETHEUS_MULTIPROC_DIR`` set, every process's files in that
  directory are summed here (prometheus_client's ``MultiProcessCollector``); without it, only this
  process's own counts are shown, which is right for ``manage.py runserver`` alone and wrong for
  several gunicorn workers or a separate Celery worker. ``t2m_metrics_multiprocess`` says which.
- gauges of state, read once per scrape from the database, Redis and the broker (``StateCollector``):
  orders by status, stuck orders, queue depths, the Zoho budget, endpoints failing or disabled.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpResponse, HttpResponseNotFound
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from core import instruments
from integrations.zoho.budget import zoho_daily_usage
from orders.models import Order
from orders.selectors import orders_on_void_sales_orders, stuck_orders
from t2mobile_portal.health import shared_checks
from webhooks.models import WebhookEndpointState, WebhookLog


def _flag(value) -> int:
    return 1 if value else 0


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, help_text)
    gauge.add_metric([], value)
    return gauge


def _by_status(name: str, help_text: str, model) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, help_text, labels=["status"])
    counts = dict(model.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    for status in model.Status.values:
        gauge.add_metric([status], counts.get(status, 0))
    return gauge


class StateCollector:
    """Gauges read at scrape time: what is true now, whichever process made it so."""

    def collect(self):
        yield _gauge(
            "t2m_metrics_multiprocess",
            "1: counters summed over every process sharing PROMETHEUS_MULTIPROC_DIR; "
            "0: the variable is unset and the counters are this web process's alone",
            _flag(instruments.MULTIPROCESS),
        )
        shared = shared_checks()
        if shared.queue_depths:  # unknowable under the filesystem broker (make run without Redis)
            queues = GaugeMetricFamily("t2m_queue_depth", "Jobs waiting in each Celery queue", labels=["queue"])
            for queue, depth in shared.queue_depths.items():
                queues.add_metric([queue], depth)
            yield queues
        yield _gauge(
            "t2m_zoho_paused", "1 while Zoho calls are paused (a limit answer, the daily cap)", _flag(shared.zoho_pause)
        )
        yield _gauge(
            "t2m_zoho_credentials_failing",
            "1 while Zoho refuses our credentials even after a token refresh",
            _flag(shared.zoho_failing_since is not None),
        )
        yield _gauge(
            "t2m_zoho_data_centre_mismatch",
            "1 while Zoho's token answer names another data centre than ZOHO_API_BASE",
            _flag(shared.zoho_data_centre_mismatch),
        )
        if shared.database:
            yield from self._tables()
        yield from self._zoho_budget()

    @staticmethod
    def _tables():
        yield _by_status("t2m_orders", "Orders by status", Order)
        yield _by_status("t2m_webhook_events", "Webhook events by status", WebhookLog)
        yield _gauge(
            "t2m_orders_processing_stuck", "Orders PROCESSING untouched for over 15 minutes", stuck_orders().count()
        )
        oldest = Order.objects.filter(status=Order.Status.PROCESSING).aggregate(at=Min("created_at"))["at"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0
        yield _gauge("t2m_orders_processing_oldest_seconds", "Age of the oldest PROCESSING order (0: none)", age)
        yield _gauge(
            "t2m_orders_on_void_sales_order",
            "PROCESSING orders waiting on a Zoho sales order that is void",
            orders_on_void_sales_orders().count(),
        )
        yield _gauge(
            "t2m_webhook_events_waiting",
            "Webhook events waiting for a retry",
            WebhookLog.objects.filter(status=WebhookLog.Status.PENDING, retries__gt=0).count(),
        )
        failing = GaugeMetricFamily(
            "t2m_webhook_endpoint_failing",
            "1 while the partner's endpoint fails (no success since)",
            labels=["partner"],
        )
        disabled = GaugeMetricFamily(
            "t2m_webhook_endpoint_disabled", "1 while the partner's endpoint is disabled", labels=["partner"]
        )
        states = WebhookEndpointState.objects.values_list("partner__partner_id", "consecutive_failures", "disabled_at")
        for partner, failures, disabled_at in states.order_by("partner__partner_id"):
            failing.add_metric([partner], 1 if failures > 0 else 0)
            disabled.add_metric([partner], 1 if disabled_at is not None else 0)
        yield failing
        yield disabled

    @staticmethod
    def _zoho_budget():
        try:
            usage = zoho_daily_usage()
        except Exception:  # Redis unreachable: the budget is unknown, not zero
            return
        yield _gauge("t2m_zoho_daily_limit", "ZOHO_DAILY_LIMIT (0: no limit)", usage["limit"])
        shared = usage["scope"] == "all processes"
        yield _gauge(
            "t2m_zoho_usage_shared",
            "1 when the day's Zoho calls are counted for every process (Redis); 0: per process, no budget figure",
            int(shared),
        )
        if usage["limit"] and shared:  # a per-process count would read as a false, nearly full budget
            yield _gauge(
                "t2m_zoho_budget_remaining_today",
                "Zoho API calls left today (Africa/Lagos day) under ZOHO_DAILY_LIMIT",
                max(usage["limit"] - usage["calls"], 0),
            )


class _ThisProcess:
    """This process's own counters, when there is no multiprocess directory to sum."""

    def collect(self):
        return instruments.REGISTRY.collect()


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if instruments.MULTIPROCESS:
        MultiProcessCollector(registry, path=instruments.MULTIPROC_DIR)
    else:
        registry.register(_ThisProcess())
    registry.register(StateCollector())
    return registry


def metrics_view(request):
    token = settings.METRICS_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        return HttpResponseNotFound()
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
