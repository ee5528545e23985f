"""What staff (the admin, the commands) do to a partner's deliveries: pause, resume, resend; and the
endpoint's health switch: disabled by the delivery outcomes (410, or failing for too long), enabled
again only by staff.

A resent event keeps its event id and starts a fresh retry schedule; the attempt is queued after
the commit, and a resumed partner's (or re-enabled endpoint's) waiting events are dispatched at
once, each order's in sequence.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from partners.models import Partner
from webhooks.dispatch import delivery_enqueue, events_dispatch_due
from webhooks.models import WebhookEndpointState, WebhookLog

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


def endpoint_disable(*, partner: Partner, reason: str, now: datetime) -> bool:
    """Stop every delivery to ``partner``'s endpoint (``reason``: a ``DisabledReason``) until staff
    enable it; its events wait, PENDING. False when it was disabled already (the first reason stays).
    Called inside the transaction that records the attempt that disabled it."""
    WebhookEndpointState.objects.get_or_create(partner_id=partner.pk)
    disabled = WebhookEndpointState.objects.filter(pk=partner.pk, disabled_at__isnull=True).update(
        disabled_at=now, disabled_reason=reason, busy_until=None
    )
    if disabled:
        extra = {"partner_id": partner.partner_id, "reason": reason}
        transaction.on_commit(lambda: logger.error("webhook endpoint disabled", extra=extra))
    return bool(disabled)


def endpoint_enable(*, partner: Partner) -> bool:
    """Let deliveries to ``partner``'s disabled endpoint go again; its waiting events are queued after
    the commit, each order's in sequence. The failing clock restarts at the next failure. False when
    the endpoint was not disabled (nothing changes)."""
    enabled = WebhookEndpointState.objects.filter(pk=partner.pk, disabled_at__isnull=False).update(
        disabled_at=None, disabled_reason="", failing_since=None
    )
    if enabled:
        transaction.on_commit(lambda: events_dispatch_due(partner=partner))
        logger.info("webhook endpoint enabled", extra={"partner_id": partner.partner_id})
    return bool(enabled)


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
