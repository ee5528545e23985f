"""Celery tasks of the catalogue. Tasks take primitive ids and call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from catalogue.services import CatalogueSyncBusy, catalogue_sync
from integrations.zoho.errors import ZohoError

logger = logging.getLogger(__name__)


@shared_task(name="integrations.sync_zoho_catalogue", ignore_result=True)
def sync_zoho_catalogue() -> None:
    """Refresh the local catalogue from Zoho (every 15 minutes).

    Safe to run twice (a cache lock lets one run at a time; the second returns) and to kill at any
    line (the changes commit in one transaction after all pages are read).
    """
    try:
        catalogue_sync()
    except CatalogueSyncBusy:
        logger.info("catalogue sync skipped: another one is running")
    except ZohoError:
        logger.warning("catalogue sync failed; the next scheduled run retries")
