"""``GET /t2mobile/health`` and ``/health/live`` (composition root: it reads every room).

Two readouts cut from the same checks (``shared_checks``: database, broker, cache, Zoho):

- ``partner_health_report`` is what a partner's key gets: the shared checks as ``ok`` or ``down``
  only, and the calling partner's own figures (its stuck orders, its webhooks waiting for a retry,
  its endpoint's health). No global count, queue depth or Zoho call usage reaches a partner: one
  partner must not learn another's traffic.
- ``health_report`` is the operators' readout, with the global figures (queue depth per queue, all
  stuck orders, all webhooks waiting, the Zoho budget, why Zoho is paused or failing, the data
  centre). No endpoint serves it; operators read the same figures on ``/metrics`` and the admin
  overview.

``/health/live`` needs no key and says only that the process answers. Neither names hostnames or
versions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.openapi import error_responses
from core.redis_roles import limits
from core.times import iso_utc
from integrations.zoho.auth import DATA_CENTRE_MISMATCH_KEY, auth_failing_since
from integrations.zoho.budget import Pause, zoho_daily_usage, zoho_paused
from orders.selectors import stuck_orders
from partners.models import Partner
from t2mobile_portal.celery import app
from webhooks.models import WebhookEndpointState, WebhookLog

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
    """Both caches answer: the cache role's and the limits' (``core/redis_roles.py``)."""
    try:
        for store in (cache, limits):
            store.set("health:ping", "1", 10)
            if store.get("health:ping") != "1":
                return False
        return True
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
        return limits.get(DATA_CENTRE_MISMATCH_KEY) is not None
    except Exception:
        return False


@dataclass(frozen=True)
class SharedChecks:
    """What every partner shares: the database, the cache, the broker (with its queue depths) and
    Zoho (refusing our credentials, paused, or answering from another data centre). Zoho's state is
    kept in the limits cache, so while Redis is down it reads as fine."""

    database: bool
    cache: bool
    queue_depths: dict[str, int] | None
    zoho_failing_since: float | None
    zoho_pause: Pause | None
    zoho_data_centre_mismatch: bool

    @property
    def broker(self) -> bool:
        return self.queue_depths is not None

    @property
    def zoho_down(self) -> bool:
        """No Zoho call succeeds now: orders wait in PROCESSING until it is back."""
        return self.zoho_failing_since is not None or self.zoho_pause is not None or self.zoho_data_centre_mismatch

    def up_down(self) -> dict[str, str]:
        return {
            "database": _ok(self.database),
            "cache": _ok(self.cache),
            "broker": _ok(self.broker),
            "zoho": _ok(not self.zoho_down),
        }


def _ok(up: bool) -> str:
    return "ok" if up else "down"


def shared_checks() -> SharedChecks:
    cache_ok = _cache_ok()
    return SharedChecks(
        database=_database_ok(),
        cache=cache_ok,
        queue_depths=_broker_queue_depths(),
        zoho_failing_since=_zoho_auth_failing_since() if cache_ok else None,
        zoho_pause=zoho_paused() if cache_ok else None,
        zoho_data_centre_mismatch=_zoho_data_centre_mismatch() if cache_ok else False,
    )


def _status(shared: SharedChecks, *, warning: bool) -> str:
    if not shared.database:
        return "down"
    if not shared.cache or not shared.broker or warning:
        return "degraded"
    return "ok"


def endpoint_health(*, partner: Partner) -> dict:
    """The partner's webhook endpoint as deliveries see it (``webhooks.models.WebhookEndpointState``)."""
    state = WebhookEndpointState.objects.filter(partner=partner).first()
    if not partner.webhook_url:
        status = "unconfigured"
    elif state is not None and state.is_disabled:
        status = "disabled"
    elif state is not None and state.is_failing:
        status = "failing"
    else:
        status = "healthy"
    return {
        "status": status,
        "deliveriesPaused": partner.deliveries_paused,
        "consecutiveFailures": state.consecutive_failures if state else 0,
        "failingSince": iso_utc(state.failing_since) if state else None,
        "disabledAt": iso_utc(state.disabled_at) if state else None,
        "disabledReason": (state.disabled_reason or None) if state else None,
        "lastSuccessAt": iso_utc(state.last_success_at) if state else None,
    }


def _webhooks_waiting():
    return WebhookLog.objects.filter(status=WebhookLog.Status.PENDING, retries__gt=0)


def partner_health_report(*, partner: Partner) -> dict:
    """The calling partner's readout: the shared checks up or down, and its own figures only."""
    shared = shared_checks()
    checks: dict = shared.up_down()
    if shared.database:
        checks["stuckOrders"] = stuck_orders().filter(partner=partner).count()
        checks["webhooksWaiting"] = _webhooks_waiting().filter(partner=partner).count()
        checks["webhookEndpoint"] = endpoint_health(partner=partner)
    return {"status": _status(shared, warning=shared.zoho_down), "checks": checks}


def health_report() -> dict:
    """The operators' readout: every figure, for the whole gateway (see the module's docstring)."""
    shared = shared_checks()
    checks: dict = {"database": _ok(shared.database), "cache": _ok(shared.cache), "broker": _ok(shared.broker)}
    if shared.queue_depths is not None:
        checks["queueDepth"] = shared.queue_depths
    if shared.database:
        checks["stuckOrders"] = stuck_orders().count()
        checks["webhooksWaiting"] = _webhooks_waiting().count()
        try:
            checks["zohoBudget"] = zoho_daily_usage()
        except Exception:
            logger.warning("health: Zoho budget unreadable")
    checks["zoho"] = "failing" if shared.zoho_failing_since is not None else "ok"
    if shared.zoho_failing_since is not None:
        checks["zohoFailingSince"] = iso_utc(datetime.fromtimestamp(shared.zoho_failing_since, tz=UTC))
    if shared.zoho_pause is not None:
        checks["zohoPaused"] = {
            "reason": shared.zoho_pause.reason,
            "until": iso_utc(timezone.now() + timedelta(seconds=shared.zoho_pause.seconds)),
        }
    checks["zohoDataCentre"] = "mismatch" if shared.zoho_data_centre_mismatch else "ok"
    budget_warning = checks.get("zohoBudget", {}).get("warning", False)
    return {"status": _status(shared, warning=shared.zoho_down or budget_warning), "checks": checks}


# --- The views --------------------------------------------------------------------------------------

UP_DOWN = ["ok", "down"]


class WebhookEndpointHealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["healthy", "failing", "disabled", "unconfigured"],
        help_text="unconfigured: no webhook URL; disabled: no deliveries until IconTech enables it again.",
    )
    deliveriesPaused = serializers.BooleanField(help_text="IconTech has paused deliveries; events wait, in order.")
    consecutiveFailures = serializers.IntegerField()
    failingSince = serializers.CharField(allow_null=True, help_text="First failure after the last success.")
    disabledAt = serializers.CharField(allow_null=True)
    disabledReason = serializers.ChoiceField(choices=WebhookEndpointState.DisabledReason.values, allow_null=True)
    lastSuccessAt = serializers.CharField(allow_null=True)


class HealthChecksSerializer(serializers.Serializer):
    """The shared checks are ok or down; the figures are the calling partner's own. While the
    database is unreachable (no key can be checked) the checks are {"database": "down"} alone."""

    database = serializers.ChoiceField(choices=UP_DOWN)
    cache = serializers.ChoiceField(choices=UP_DOWN, required=False)
    broker = serializers.ChoiceField(choices=UP_DOWN, required=False)
    zoho = serializers.ChoiceField(
        choices=UP_DOWN, required=False, help_text="down: orders wait in PROCESSING until Zoho takes calls again."
    )
    stuckOrders = serializers.IntegerField(
        required=False, help_text="Your orders in PROCESSING for over 15 minutes (absent without the database)."
    )
    webhooksWaiting = serializers.IntegerField(
        required=False, help_text="Your webhook events waiting for a retry (absent without the database)."
    )
    webhookEndpoint = WebhookEndpointHealthSerializer(required=False, help_text="Absent without the database.")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "down"])
    checks = HealthChecksSerializer()


class HealthLiveSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])


class HealthLiveView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        operation_id="healthLive", summary="Liveness (no auth)", auth=[], responses={200: HealthLiveSerializer}
    )
    def get(self, request):
        return Response({"status": "ok"})


class HealthView(APIView):
    @extend_schema(
        operation_id="health",
        summary="Readiness: the shared checks up or down, and your own stuck orders, webhooks and endpoint",
        responses={**error_responses(), 200: HealthSerializer, 503: HealthSerializer},
    )
    def get(self, request):
        report = partner_health_report(partner=request.user)
        return Response(report, status=503 if report["status"] == "down" else 200)

    def handle_exception(self, exc):
        # API keys are checked in the database, so while it is unreachable no caller can be
        # authenticated: answer the contract's "down" rather than the error envelope. It says no more
        # than the 503 every other endpoint gives then.
        if isinstance(exc, (OperationalError, InterfaceError)):
            logger.warning("health: database unreachable")
            return Response({"status": "down", "checks": {"database": "down"}}, status=503)
        return super().handle_exception(exc)
