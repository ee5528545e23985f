"""What staff (the admin, the commands) and the partner itself (POST /t2mobile/events/…,
/t2mobile/webhooks/test) do to a partner's deliveries: pause, resume, resend, recover, ping; and the
endpoint's health switch: disabled by the delivery outcomes (410, or failing for too long), enabled
again only by staff.

A resent event keeps its event id and starts a fresh retry schedule; the attempt is queued after
the commit, and a resumed partner's (or re-enabled endpoint's) waiting events are dispatched at
once, each order's in sequence. A partner may resend only its own events, and recover its FAILED
events only within a window of at most RECOVER_MAX_WINDOW inside the failed events' retention;
staff are not held to those bounds.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import errors
from partners.models import Partner
from webhooks.dispatch import delivery_enqueue, events_dispatch_due
from webhooks.models import WebhookEndpointState, WebhookLog
from webhooks.outbox import event_record
from webhooks.selectors import delivery_gate, event_id_plausible

logger = logging.getLogger(__name__)

RESEND_BATCH_SIZE = 1000
# POST /t2mobile/events/recover: the widest window a partner may ask for at once.
RECOVER_MAX_WINDOW = timedelta(days=7)
PING_MESSAGE = "Test event from IconTech; no action needed."


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


def events_resend_failed(*, since: datetime, until: datetime | None = None, partner: Partner | None = None) -> int:
    """Resend every FAILED event created at or after ``since`` and, with ``until``, before it (of one
    partner or all); the count.

    Batches go in primary-key order, so that an event made PENDING never has an earlier FAILED event
    of its order still waiting for a later batch: each order's events go out in sequence.
    """
    failed = WebhookLog.objects.filter(status=WebhookLog.Status.FAILED, created_at__gte=since)
    if until is not None:
        failed = failed.filter(created_at__lt=until)
    if partner is not None:
        failed = failed.filter(partner=partner)
    count = 0
    while True:
        with transaction.atomic():
            batch = failed.select_for_update(skip_locked=True).order_by("pk")
            pks = list(batch.values_list("pk", flat=True)[:RESEND_BATCH_SIZE])
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


# --- What the partner does itself (the events API) -------------------------------------------------


def partner_event_resend(*, partner: Partner, event_id: str) -> WebhookLog:
    """A new delivery of one of ``partner``'s events, same id, behind its order's earlier PENDING events.

    An event already PENDING is left exactly as it is (no field touched, nothing queued): it is going
    out anyway, and a partner retrying its resend must not reset the schedule. The row is locked, so
    two resends at once make one new delivery. Another partner's event is EVENT_NOT_FOUND.
    """
    if not event_id_plausible(event_id):
        raise errors.EventNotFound()
    with transaction.atomic():
        log = WebhookLog.objects.select_for_update().filter(partner=partner, event_id=event_id).first()
        if log is None:
            raise errors.EventNotFound()
        if log.status == WebhookLog.Status.PENDING:
            return log
        return event_resend(log=log)


def recover_window_check(*, since: datetime, until: datetime | None, now: datetime) -> datetime:
    """The end of a partner's recovery window (``until``, or now), or VALIDATION_ERROR with the
    fields at fault: ``since`` not in the future nor older than WEBHOOK_FAILED_RETENTION_DAYS,
    ``until`` after ``since``, at most RECOVER_MAX_WINDOW between them."""
    until = until if until is not None else now
    retention = timedelta(days=settings.WEBHOOK_FAILED_RETENTION_DAYS)
    details: dict[str, list[str]] = {}
    if since > now:
        details["since"] = ["since is in the future."]
    elif since < now - retention:
        details["since"] = [f"since is older than the {retention.days} days failed events are kept."]
    if until <= since:
        details["until"] = ["until must be later than since."]
    elif until - since > RECOVER_MAX_WINDOW:
        details["until"] = [f"The window from since to until is at most {RECOVER_MAX_WINDOW.days} days wide."]
    if details:
        raise errors.ValidationFailed(details=details)
    return until


def partner_events_recover(*, partner: Partner, since: datetime, until: datetime | None = None) -> int:
    """Deliver again every FAILED event of ``partner`` created in [since, until) (``until``: now), in
    order; the number requeued. One transaction: the events are dispatched after it commits."""
    until = recover_window_check(since=since, until=until, now=timezone.now())
    with transaction.atomic():
        count = events_resend_failed(since=since, until=until, partner=partner)
    logger.info("partner recovered its failed webhook events", extra={"partner_id": partner.partner_id, "count": count})
    return count


def partner_ping_send(*, partner: Partner) -> WebhookLog:
    """Record a PING event for ``partner`` (no order), delivered as soon as it commits, signed like
    every event: the partner's check of its endpoint and verifier.

    ``event_record`` queues a new event itself unless the endpoint is failing, when new events are
    left to the periodic dispatch; but a partner testing an endpoint it has just mended must not
    wait for that, so the PING is queued at once then too. Its delivery still takes the failing
    endpoint's one attempt slot (and a paused partner's, or a disabled endpoint's, PING waits), so
    the endpoint gets no more than one attempt at a time; a 2xx ends the failing spell and the
    backlog follows.
    """
    with transaction.atomic():
        log = event_record(partner=partner, event_type=WebhookLog.EventType.PING, data={"message": PING_MESSAGE})
        assert log is not None  # no dedup key: always recorded
        log_pk = log.pk
        transaction.on_commit(lambda: _ping_enqueue_while_failing(log_pk))
    return log


def _ping_enqueue_while_failing(log_pk: int) -> None:
    gate = delivery_gate(log_pk=log_pk)
    if gate is not None and not gate.partner_paused and not gate.endpoint_disabled and gate.endpoint_failures > 0:
        delivery_enqueue(log_pk)
