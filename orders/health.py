"""Readiness figures for GET /t2mobile/health: database, broker, cache, queue depth per queue,
stuck orders, webhooks waiting, the Zoho budget, whether Zoho refuses our credentials and whether
its token answer names another data centre than ``ZOHO_API_BASE``. Names no hostnames or versions.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from integrations.zoho.budget import zoho_paused
from orders.serializers import iso_utc

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
    from t2mobile_portal.celery import app

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
    from integrations.zoho.client import auth_failing_since

    try:
        return auth_failing_since()
    except Exception:
        return None


def _zoho_data_centre_mismatch() -> bool:
    """The last token answer's ``api_domain`` is not the host of ZOHO_API_BASE (the wrong data centre)."""
    from integrations.zoho.client import DATA_CENTRE_MISMATCH_KEY

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
        from orders.selectors import stuck_orders
        from webhooks.models import WebhookLog

        checks["stuckOrders"] = stuck_orders().count()
        checks["webhooksWaiting"] = WebhookLog.objects.filter(status=WebhookLog.Status.PENDING, retries__gt=0).count()
        from integrations.selectors import zoho_daily_usage

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
