"""Retention of the outbox: old SENT and FAILED events go, with their attempts, in batches."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webhooks.models import WebhookAttempt, WebhookLog

logger = logging.getLogger(__name__)

PURGE_BATCH_SIZE = 1000


def webhook_logs_purge(*, now: datetime | None = None) -> int:
    """Delete SENT events older than WEBHOOK_SENT_RETENTION_DAYS and FAILED ones older than
    WEBHOOK_FAILED_RETENTION_DAYS, with their attempts, in batches; the number of events deleted."""
    now = now or timezone.now()
    rules = (
        (WebhookLog.Status.SENT, settings.WEBHOOK_SENT_RETENTION_DAYS),
        (WebhookLog.Status.FAILED, settings.WEBHOOK_FAILED_RETENTION_DAYS),
    )
    deleted = 0
    for status, days in rules:
        old = WebhookLog.objects.filter(status=status, created_at__lt=now - timedelta(days=days))
        while True:
            with transaction.atomic():
                pks = list(old.select_for_update(skip_locked=True).values_list("pk", flat=True)[:PURGE_BATCH_SIZE])
                if not pks:
                    break
                WebhookAttempt.objects.filter(log_id__in=pks).delete()
                WebhookLog.objects.filter(pk__in=pks).delete()
            deleted += len(pks)
    if deleted:
        logger.info("old webhook events purged", extra={"count": deleted})
    return deleted
