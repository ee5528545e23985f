"""Reads of the integrations app, for the health endpoint and the admin overview."""

from __future__ import annotations

from django.conf import settings

from integrations.models import CatalogueSync
from integrations.zoho.budget import zoho_calls_today

__all__ = ["last_catalogue_sync", "zoho_calls_today", "zoho_daily_usage"]


def last_catalogue_sync(*, successful: bool = False) -> CatalogueSync | None:
    """The latest catalogue sync (or the latest that finished well)."""
    runs = CatalogueSync.objects.all()
    if successful:
        runs = runs.filter(status=CatalogueSync.Status.DONE)
    return runs.order_by("-started_at").first()


def zoho_daily_usage() -> dict:
    """Today's Zoho calls against ``ZOHO_DAILY_LIMIT``; ``warning`` from 80 % (health)."""
    calls = zoho_calls_today()
    limit = settings.ZOHO_DAILY_LIMIT
    share = calls / limit if limit else 0.0
    return {"calls": calls, "limit": limit, "share": round(share, 4), "warning": share >= 0.8}
