"""Dispatch: choosing which events of a partner go to the ``webhooks`` queue now, and queueing them.

Delivery is driven from the database. ``events_claim_due`` claims a partner's due rows in one short
transaction (``SELECT … FOR UPDATE SKIP LOCKED``, then ``next_retry_at`` is pushed forward as a
lease); ``events_dispatch_due`` (the periodic ``webhooks.deliver_due_webhooks``) does that in
batches and queues one ``webhooks.deliver_webhook`` per claimed row, so a lost broker message or a
dead worker only delays an event until its lease runs out. A failing endpoint gets one attempt at a
time: its slot is ``busy_until`` on its endpoint state, taken here and by the delivery's own claim.
Every delivery and dispatch message of the outbox is queued by this module.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from partners.models import Partner
from webhooks.models import WebhookEndpointState, WebhookLog
from webhooks.selectors import events_due, partners_with_due_events
from webhooks.tasks import deliver_due_webhooks, deliver_webhook

logger = logging.getLogger(__name__)

DISPATCH_CONTINUE_SECONDS = 1.0


def lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)


def endpoint_state(partner_id: int) -> WebhookEndpointState:
    state, _ = WebhookEndpointState.objects.get_or_create(partner_id=partner_id)
    return state


def endpoint_slot_take(*, partner_id: int, now: datetime, lease: datetime, held: datetime | None = None) -> bool:
    """Inside a transaction: take the one attempt slot of a failing endpoint until ``lease``.

    ``held`` is a lease the dispatcher already took for this very attempt.
    """
    state = WebhookEndpointState.objects.select_for_update(skip_locked=True).filter(pk=partner_id).first()
    if state is None:
        return False
    if state.busy_until is not None and state.busy_until > now and state.busy_until != held:
        return False
    state.busy_until = lease
    state.save(update_fields=["busy_until"])
    return True


def events_claim_due(*, partner: Partner, now: datetime | None = None, limit: int | None = None) -> list:
    """Claim up to ``limit`` due events of ``partner``: ``[(log pk, lease), …]``.

    Rows locked by another claimer are skipped, and claimed rows get ``next_retry_at = lease``, so
    two claimers never get the same row. A healthy endpoint has at most WEBHOOK_DISPATCH_BATCH_SIZE
    claims outstanding; a failing one gets one row, and only when no other attempt to it is in flight.
    """
    now = now or timezone.now()
    limit = limit or settings.WEBHOOK_DISPATCH_BATCH_SIZE
    lease = lease_end(now)
    with transaction.atomic():
        if Partner.objects.filter(pk=partner.pk, deliveries_paused=True).exists():
            return []
        failing = endpoint_state(partner.pk).is_failing
        if failing:
            limit = 1
        else:
            # Leased rows (and retries due within a lease) count as in flight.
            outstanding = WebhookLog.objects.filter(
                partner=partner, status=WebhookLog.Status.PENDING, next_retry_at__gt=now, next_retry_at__lte=lease
            ).count()
            limit = min(limit, settings.WEBHOOK_DISPATCH_BATCH_SIZE - outstanding)
            if limit <= 0:
                return []
        due = events_due(partner=partner, now=now).select_for_update(skip_locked=True)
        pks = list(due.values_list("pk", flat=True)[:limit])
        if not pks:
            return []
        if failing and not endpoint_slot_take(partner_id=partner.pk, now=now, lease=lease):
            return []
        WebhookLog.objects.filter(pk__in=pks).update(next_retry_at=lease)
    return [(pk, lease) for pk in pks]


def events_dispatch_due(*, partner: Partner | None = None, now: datetime | None = None) -> int:
    """Claim the due events (of one partner, or of every unpaused one) and queue a delivery for each.

    A healthy partner with more due events than one batch gets a follow-up dispatch a second later,
    so a backlog drains at the workers' pace without flooding the queue.
    """
    now = now or timezone.now()
    partners = [partner] if partner is not None else list(partners_with_due_events(now=now))
    if partner is not None:
        _dispatch_started(partner_pk=partner.pk)
    queued = 0
    for each in partners:
        for log_pk, lease in events_claim_due(partner=each, now=now):
            delivery_enqueue(log_pk, lease=lease)
            queued += 1
        healthy = not endpoint_state(each.pk).is_failing
        if healthy and events_due(partner=each, now=now).exists():
            dispatch_enqueue(partner_pk=each.pk, countdown=DISPATCH_CONTINUE_SECONDS)
    if queued:
        logger.info("webhook deliveries queued", extra={"count": queued})
    return queued


def _dispatch_started(*, partner_pk: int) -> None:
    """A queued dispatch runs now: the next one may be queued."""
    try:
        cache.delete(_dispatch_queued_key(partner_pk))
    except Exception as exc:  # the key expires by itself
        logger.warning("webhook dispatch marker not cleared: %s", type(exc).__name__)


def _dispatch_queued_key(partner_pk: int) -> str:
    return f"webhooks:dispatch-queued:{partner_pk}"


def dispatch_enqueue(*, partner_pk: int, countdown: float) -> bool:
    """Queue ``webhooks.deliver_due_webhooks`` for one partner (on the default queue, so that it does
    not wait behind the ``webhooks`` backlog); at most one pending per partner at a time."""
    try:
        if not cache.add(_dispatch_queued_key(partner_pk), 1, timeout=countdown + 30):
            return False
        deliver_due_webhooks.apply_async(kwargs={"partner_pk": partner_pk}, countdown=countdown or None)
    except Exception as exc:  # cache or broker down: the periodic sweep dispatches within a minute
        logger.warning("webhook dispatch not queued: %s", type(exc).__name__)
        return False
    return True


def delivery_enqueue(log_pk: int, *, lease: datetime | None = None, countdown: float | None = None) -> bool:
    """Queue ``webhooks.deliver_webhook``; a broker outage only delays the event (the periodic task
    claims it once its ``next_retry_at`` or lease has passed)."""
    args: list = [log_pk] if lease is None else [log_pk, lease.isoformat()]
    try:
        deliver_webhook.apply_async(args=args, countdown=countdown)
    except Exception as exc:  # kombu raises many types; the database still has the event
        logger.warning("webhook delivery not queued, deliver_due_webhooks will send it: %s", type(exc).__name__)
        return False
    return True
