"""``GET /t2mobile/health`` and ``/health/live`` (composition root: it reads every room).

Readiness figures: database, broker, cache, queue depth per queue, stuck orders, webhooks waiting,
the Zoho budget, whether Zoho refuses our credentials and whether its token answer names another
data centre than ``ZOHO_API_BASE``. Names no hostnames or versions.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.zoho.auth import DATA_CENTRE_MISMATCH_KEY, auth_failing_since
from integrations.zoho.budget import zoho_daily_usage, zoho_paused
from orders.selectors import stuck_orders
from t2mobile_portal.celery import app
from t2mobile_portal.openapi import error_responses
from t2mobile_portal.times import iso_utc
from webhooks.models import WebhookLog

logger = logging.getLogger(__name__)

QUEUES = ("provisioning", "webhooks", "default")


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("health: database unreachable")
        return False


def _cache_ok() -> bool:
    try:
        cache.set("health:ping", "1", 10)
        return cache.get("health:ping") == "1"
    except Exception:
        logger.warning("health: cache unreachable")
        return False


def _broker_queue_depths() -> dict[str, int] | None:
    """Messages waiting per queue, or None when the broker cannot be reached."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            if settings.CELERY_BROKER_URL.startswith("redis"):
                client = conn.default_channel.client
                return {queue: int(client.llen(queue)) for queue in QUEUES}
            return {}
    except Exception:
        logger.warning("health: broker unreachable")
        return None


def _zoho_auth_failing_since() -> float | None:
    """Since when (epoch seconds) Zoho has refused our credentials even after a token refresh."""
    try:
        return auth_failing_since()
    except Exception:
        return None


def _zoho_data_centre_mismatch() -> bool:
    """The last token answer's ``api_domain`` is not the host of ZOHO_API_BASE (the wrong data centre)."""
    try:
        return cache.get(DATA_CENTRE_MISMATCH_KEY) is not None
    except Exception:
        return False


def health_report() -> dict:
    database = _database_ok()
    cache_ok = _cache_ok()
    depths = _broker_queue_depths()
    checks: dict = {
        "database": "ok" if database else "down",
        "cache": "ok" if cache_ok else "down",
        "broker": "ok" if depths is not None else "down",
    }
    if depths is not None:
        checks["queueDepth"] = depths
    if database:
        checks["stuckOrders"] = stuck_orders().count()
        checks["webhooksWaiting"] = WebhookLog.objects.filter(status=WebhookLog.Status.PENDING, retries__gt=0).count()
        try:
            checks["zohoBudget"] = zoho_daily_usage()
        except Exception:
            logger.warning("health: Zoho budget unreadable")
    failing_since = _zoho_auth_failing_since() if cache_ok else None
    zoho_failing = failing_since is not None
    checks["zoho"] = "failing" if zoho_failing else "ok"
    if zoho_failing:
        checks["zohoFailingSince"] = iso_utc(datetime.fromtimestamp(failing_since, tz=UTC))
    pause = zoho_paused() if cache_ok else None
    if pause is not None:
        checks["zohoPaused"] = {
            "reason": pause.reason,
            "until": iso_utc(timezone.now() + timedelta(seconds=pause.seconds)),
        }
    data_centre_mismatch = _zoho_data_centre_mismatch() if cache_ok else False
    checks["zohoDataCentre"] = "mismatch" if data_centre_mismatch else "ok"
    zoho_warning = (
        zoho_failing or pause is not None or data_centre_mismatch or checks.get("zohoBudget", {}).get("warning", False)
    )
    if not database:
        status = "down"
    elif not cache_ok or depths is None or zoho_warning:
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "checks": checks}


# --- The views --------------------------------------------------------------------------------------


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "down"])
    checks = serializers.DictField(required=False)


class HealthLiveView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(operation_id="healthLive", summary="Liveness (no auth)", auth=[], responses={200: HealthSerializer})
    def get(self, request):
        return Response({"status": "ok"})


class HealthView(APIView):
    @extend_schema(
        operation_id="health",
        summary="Readiness: database, broker, cache, queue depth, stuck orders, webhooks waiting",
        responses={200: HealthSerializer, 503: HealthSerializer, **error_responses()},
    )
    def get(self, request):
        report = health_report()
        return Response(report, status=503 if report["status"] == "down" else 200)

    def handle_exception(self, exc):
        # API keys are checked in the database, so while it is unreachable no caller can be
        # authenticated: answer the contract's "down" rather than the error envelope. It says no more
        # than the 503 every other endpoint gives then.
        if isinstance(exc, (OperationalError, InterfaceError)):
            logger.warning("health: database unreachable")
            return Response({"status": "down", "checks": {"database": "down"}}, status=503)
        return super().handle_exception(exc)
