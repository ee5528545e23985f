"""What staff (the admin, the commands) do to a partner's deliveries: pause, resume, resend.

A resent event keeps its event id and starts a fresh retry schedule; the attempt is queued after
the commit, and a resumed partner's waiting events are dispatched at once, each order's in sequence.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from partners.models import Partner
from webhooks.dispatch import delivery_enqueue, events_dispatch_due
from webhooks.models import WebhookLog

logger = logging.getLogger(__name__)

RESEND_BATCH_SIZE = 1000


def partner_deliveries_pause(*, partner: Partner) -> Partner:
    """Hold every delivery to ``partner``; its events wait (attempts already in flight finish)."""
    Partner.objects.filter(pk=partner.pk).update(deliveries_paused=True, updated_at=timezone.now())
    partner.deliveries_paused = True
    logger.info("webhook deliveries paused", extra={"partner_id": partner.partner_id})
    return partner


def partner_deliveries_resume(*, partner: Partner) -> Partner:
    """Let ``partner``'s events go again; the waiting ones are queued now, each order's in sequence."""
    Partner.objects.filter(pk=partner.pk).update(deliveries_paused=False, updated_at=timezone.now())
    partner.deliveries_paused = False
    transaction.on_commit(lambda: events_dispatch_due(partner=partner))
    logger.info("webhook deliveries resumed", extra={"partner_id": partner.partner_id})
    return partner


def event_resend(*, log: WebhookLog) -> WebhookLog:
    """Send an event again under the same id, whatever its status, with a fresh retry schedule."""
    WebhookLog.objects.filter(pk=log.pk).update(
        status=WebhookLog.Status.PENDING, retries=0, next_retry_at=timezone.now(), sent_at=None
    )
    log_pk = log.pk
    transaction.on_commit(lambda: delivery_enqueue(log_pk))
    log.refresh_from_db()
    logger.info("webhook event resend requested", extra={"event_id": log.event_id})
    return log


def events_resend_failed(*, since: datetime, partner: Partner | None = None) -> int:
    """Resend every FAILED event created at or after ``since`` (of one partner or all); the count."""
    failed = WebhookLog.objects.filter(status=WebhookLog.Status.FAILED, created_at__gte=since)
    if partner is not None:
        failed = failed.filter(partner=partner)
    count = 0
    while True:
        with transaction.atomic():
            pks = list(failed.select_for_update(skip_locked=True).values_list("pk", flat=True)[:RESEND_BATCH_SIZE])
            if not pks:
                break
            WebhookLog.objects.filter(pk__in=pks).update(
                status=WebhookLog.Status.PENDING, retries=0, next_retry_at=timezone.now(), sent_at=None
            )
        count += len(pks)
    if count:
        transaction.on_commit(lambda: events_dispatch_due(partner=partner))
    logger.info("failed webhook events resent", extra={"count": count})
    return count
