"""Dispatch: choosing which events of a partner go to the ``webhooks`` queue now, and queueing them.

Delivery is driven from the database. ``events_claim_due`` claims a batch of a partner's due rows in
one short transaction (``SELECT … FOR UPDATE SKIP LOCKED``, then ``next_retry_at`` is pushed forward
as a lease); ``events_dispatch_due`` (the periodic ``webhooks.deliver_due_webhooks``) claims one
batch per partner and queues one ``webhooks.deliver_webhook`` for it, which sends the batch and goes
on claiming the partner's next ones while its endpoint answers (``delivery.py``). A lost broker
message or a dead worker only delays its events until their lease runs out. A failing endpoint gets
one attempt at a time: its slot is ``busy_until`` on its endpoint state, taken here and by the
delivery's own claim. Every delivery and dispatch message of the outbox is queued by this module.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.redis_roles import limits
from partners.models import Partner
from webhooks.models import WebhookEndpointState, WebhookLog
from webhooks.selectors import events_due, partners_with_due_events
from webhooks.tasks import deliver_due_webhooks, deliver_webhook

logger = logging.getLogger(__name__)

DISPATCH_CONTINUE_SECONDS = 1.0


@contextmanager
def claim_transaction():
    """A transaction for a claim. On PostgreSQL its commit does not wait for the disk: a claim lost
    in a database crash only makes the event due again, which at-least-once delivery allows."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)


def endpoint_state(partner_id: int) -> WebhookEndpointState:
    state, _ = WebhookEndpointState.objects.get_or_create(partner_id=partner_id)
    return state


def endpoint_healthy(partner_id: int) -> bool:
    """Neither failing nor disabled: the endpoint takes batches."""
    state = endpoint_state(partner_id)
    return not state.is_failing and not state.is_disabled


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
    """Claim up to ``limit`` (WEBHOOK_DELIVERY_BATCH_SIZE) due events of ``partner``, oldest due
    first, at most one per order: ``[(log pk, lease), …]``.

    Rows locked by another claimer are skipped, and claimed rows get ``next_retry_at = lease``, so
    two claimers never get the same row. A healthy endpoint has at most WEBHOOK_DISPATCH_BATCH_SIZE
    claims outstanding; a failing one gets one row, and only when no other attempt to it is in flight;
    a paused partner or a disabled endpoint none.
    """
    now = now or timezone.now()
    limit = limit or settings.WEBHOOK_DELIVERY_BATCH_SIZE
    lease = lease_end(now)
    with claim_transaction():
        if Partner.objects.filter(pk=partner.pk, deliveries_paused=True).exists():
            return []
        state = endpoint_state(partner.pk)
        if state.is_disabled:  # its events wait for staff to enable it
            return []
        failing = state.is_failing
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
    """Claim a batch of due events (of one partner, or of every unpaused one) and queue one delivery
    for each batch; the number of events queued.

    The delivery of a healthy partner's batch claims the partner's next batches itself, so a backlog
    drains at the workers' pace without flooding the queue. A healthy partner whose due events could
    not be claimed now (other claims outstanding, rows locked) gets a follow-up dispatch a second later.
    """
    if partner is not None:
        # First, then the time: an event whose request for a dispatch found this one pending had
        # committed before the marker went, so it is due by ``now`` and claimed below.
        _dispatch_started(partner_pk=partner.pk)
    now = now or timezone.now()
    partners = [partner] if partner is not None else list(partners_with_due_events(now=now))
    queued = 0
    for each in partners:
        claims = events_claim_due(partner=each, now=now)
        if claims:
            batch_enqueue([log_pk for log_pk, _ in claims], lease=claims[0][1])
            queued += len(claims)
        elif (
            endpoint_healthy(each.pk)
            and events_due(partner=each, now=now).exists()
            and not Partner.objects.filter(pk=each.pk, deliveries_paused=True).exists()
        ):
            dispatch_enqueue(partner_pk=each.pk, countdown=DISPATCH_CONTINUE_SECONDS)
    if queued:
        logger.info("webhook deliveries queued", extra={"count": queued})
    return queued


def _dispatch_started(*, partner_pk: int) -> None:
    """A queued dispatch runs now: the next one may be queued."""
    try:
        limits.delete(_dispatch_queued_key(partner_pk))
    except Exception as exc:  # the key expires by itself
        logger.warning("webhook dispatch marker not cleared: %s", type(exc).__name__)


def _dispatch_queued_key(partner_pk: int) -> str:
    return f"webhooks:dispatch-queued:{partner_pk}"


def dispatch_enqueue(*, partner_pk: int, countdown: float) -> bool:
    """Queue ``webhooks.deliver_due_webhooks`` for one partner (on the default queue, so that it does
    not wait behind the ``webhooks`` backlog); at most one pending per partner at a time."""
    try:
        if not limits.add(_dispatch_queued_key(partner_pk), 1, timeout=countdown + 30):
            return False
        deliver_due_webhooks.apply_async(kwargs={"partner_pk": partner_pk}, countdown=countdown or None)
    except Exception as exc:  # cache or broker down: the periodic sweep dispatches within a minute
        logger.warning("webhook dispatch not queued: %s", type(exc).__name__)
        return False
    return True


def delivery_enqueue(log_pk: int, *, countdown: float | None = None) -> bool:
    """Queue ``webhooks.deliver_webhook`` for one event (it claims the event itself, when due); a
    broker outage only delays the event (the periodic task claims it once its ``next_retry_at`` has
    passed)."""
    try:
        deliver_webhook.apply_async(args=[log_pk], countdown=countdown)
    except Exception as exc:  # kombu raises many types; the database still has the event
        logger.warning("webhook delivery not queued, deliver_due_webhooks will send it: %s", type(exc).__name__)
        return False
    return True


def batch_enqueue(log_pks: list[int], *, lease: datetime) -> bool:
    """Queue ``webhooks.deliver_webhook`` for a batch this process claimed until ``lease``; a broker
    outage only delays the batch until its lease has passed."""
    try:
        deliver_webhook.apply_async(kwargs={"log_pks": log_pks, "lease": lease.isoformat()})
    except Exception as exc:  # kombu raises many types; the database still has the events
        logger.warning("webhook batch not queued, deliver_due_webhooks will send it: %s", type(exc).__name__)
        return False
    return True
