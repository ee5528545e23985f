"""Writes of the webhook outbox: recording events, delivering them, and the staff controls.

``event_record`` is the only way an event row is created. It must be called inside the caller's
transaction (the change it reports): the row commits or rolls back with the change. The body is
serialised once there and stored; every delivery attempt signs and sends exactly these bytes.

Delivery is driven from the database. An attempt first *claims* its row in a short transaction
(``SELECT … FOR UPDATE SKIP LOCKED``, then ``next_retry_at`` is pushed forward as a lease), sends
outside any transaction, and records the outcome in a second short transaction, only if it still
holds the lease. A claim is refused while the partner is paused, while an earlier event of the same
order is PENDING, and, while the partner's endpoint is failing, while another attempt to it is in
flight. ``events_dispatch_due`` (the periodic ``webhooks.deliver_due_webhooks``) claims due rows in
batches and queues one ``webhooks.deliver_webhook`` per claimed row, so a lost broker message or a
dead worker only delays an event until its lease runs out.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from partners.models import Partner
from webhooks.client import DeliveryResult, WebhookClient
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog
from webhooks.selectors import (
    DeliveryGate,
    delivery_gate,
    earlier_pending_of_same_order,
    events_due,
    partners_with_due_events,
    secrets_active,
)
from webhooks.signing import signature_headers
from webhooks.slots import slot_release, slot_take

logger = logging.getLogger(__name__)

PURGE_BATCH_SIZE = 1000
RESEND_BATCH_SIZE = 1000
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
HTTP_GONE = 410
DIRECT_ENQUEUE_PER_SECOND = 50  # new events of one partner queued one by one, per process and second
DISPATCH_CONTINUE_SECONDS = 1.0
# An event over its partner's cap of attempts in flight is tried again this much later.
SLOT_WAIT_SECONDS = 1.0

_client = WebhookClient()


class DeliveryOutcome(StrEnum):
    SENT = "SENT"  # 2xx: delivered
    RETRY = "RETRY"  # failed; another attempt is scheduled
    FAILED = "FAILED"  # 410, or the retry schedule is used up (dead letter)
    SKIPPED = "SKIPPED"  # not claimed: not due, paused, held by order, endpoint busy, or taken over
    DEFERRED = "DEFERRED"  # not claimed: the partner has its maximum of attempts in flight; requeued


# --- Recording events -----------------------------------------------------------------------------


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def event_record(
    *,
    partner: Partner,
    event_type: str,
    data: dict,
    order_pk: int | None = None,
    dedup_key: str | None = None,
) -> WebhookLog | None:
    """Write one event row in the caller's transaction; None when ``dedup_key`` was already used.

    ``order_pk`` is the order the event is about, if any: the events of one order are delivered one
    after another, in the order they were recorded (the caller builds ``data``; this room never reads
    orders).

    Delivery is queued only after the caller's transaction commits; if that queueing fails, the
    periodic ``webhooks.deliver_due_webhooks`` sends the event anyway (``next_retry_at`` is now).
    """
    from django.core.serializers.json import DjangoJSONEncoder

    from t2mobile_portal.times import iso_utc

    now = timezone.now()
    event_id = new_event_id()
    envelope = {
        "id": event_id,
        "type": event_type,
        "createdAt": iso_utc(now),
        "partnerId": partner.partner_id,
        "data": data,
    }
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    try:
        with transaction.atomic():
            log = WebhookLog.objects.create(
                event_id=event_id,
                partner=partner,
                event_type=event_type,
                order_id=order_pk,
                payload=json.loads(body),  # exactly what is sent, as JSON
                body=body,
                status=WebhookLog.Status.PENDING,
                next_retry_at=now,
                dedup_key=dedup_key,
            )
    except IntegrityError:
        if dedup_key and WebhookLog.objects.filter(dedup_key=dedup_key).exists():
            return None
        raise
    log_pk = log.pk
    transaction.on_commit(lambda: _new_event_enqueue(log_pk))
    return log


def _new_event_enqueue(log_pk: int) -> None:
    """Queue the first attempt of a new event right after its commit.

    Not for a paused partner or a failing endpoint: those events are left to the dispatcher (one
    attempt at a time), so that thousands of events for a dead endpoint do not fill the
    ``webhooks`` queue ahead of other partners'. And beyond ``DIRECT_ENQUEUE_PER_SECOND`` events
    of one partner in a second (a batch job committing thousands), the rest are claimed and queued
    by one dispatch in batches, never more than WEBHOOK_DISPATCH_BATCH_SIZE in flight.
    """
    gate = delivery_gate(log_pk=log_pk)
    if gate is None or gate.partner_paused or gate.endpoint_failures > 0:
        return
    direct, dispatch = _direct_enqueue_budget.take(gate.partner_id)
    if direct:
        _delivery_enqueue(log_pk)
    elif dispatch:
        _dispatch_enqueue(partner_pk=gate.partner_id, countdown=0)


class _DirectEnqueueBudget:
    """Per process: how many new events of a partner were queued one by one in the current second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[int, tuple[int, int, bool]] = {}  # partner pk -> (second, count, dispatched)

    def take(self, partner_pk: int) -> tuple[bool, bool]:
        """(queue this event on its own?, queue one dispatch for the partner instead?)"""
        second = int(time.monotonic())
        with self._lock:
            then, count, dispatched = self._seconds.get(partner_pk, (second, 0, False))
            if then != second:
                count, dispatched = 0, False
            count += 1
            direct = count <= DIRECT_ENQUEUE_PER_SECOND
            dispatch = not direct and not dispatched
            self._seconds[partner_pk] = (second, count, dispatched or dispatch)
        return direct, dispatch


_direct_enqueue_budget = _DirectEnqueueBudget()


def _dispatch_started(*, partner_pk: int) -> None:
    """A queued dispatch runs now: the next one may be queued."""
    from django.core.cache import cache

    try:
        cache.delete(_dispatch_queued_key(partner_pk))
    except Exception as exc:  # the key expires by itself
        logger.warning("webhook dispatch marker not cleared: %s", type(exc).__name__)


def _dispatch_queued_key(partner_pk: int) -> str:
    return f"webhooks:dispatch-queued:{partner_pk}"


def _dispatch_enqueue(*, partner_pk: int, countdown: float) -> bool:
    """Queue ``webhooks.deliver_due_webhooks`` for one partner (on the default queue, so that it does
    not wait behind the ``webhooks`` backlog); at most one pending per partner at a time."""
    from django.core.cache import cache

    from webhooks.tasks import deliver_due_webhooks

    try:
        if not cache.add(_dispatch_queued_key(partner_pk), 1, timeout=countdown + 30):
            return False
        deliver_due_webhooks.apply_async(kwargs={"partner_pk": partner_pk}, countdown=countdown or None)
    except Exception as exc:  # cache or broker down: the periodic sweep dispatches within a minute
        logger.warning("webhook dispatch not queued: %s", type(exc).__name__)
        return False
    return True


def _delivery_enqueue(log_pk: int, *, lease: datetime | None = None, countdown: float | None = None) -> bool:
    """Queue ``webhooks.deliver_webhook``; a broker outage only delays the event (the periodic task
    claims it once its ``next_retry_at`` or lease has passed)."""
    from webhooks.tasks import deliver_webhook

    args: list = [log_pk] if lease is None else [log_pk, lease.isoformat()]
    try:
        deliver_webhook.apply_async(args=args, countdown=countdown)
    except Exception as exc:  # kombu raises many types; the database still has the event
        logger.warning("webhook delivery not queued, deliver_due_webhooks will send it: %s", type(exc).__name__)
        return False
    return True


# --- Claiming -------------------------------------------------------------------------------------


def _lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)


def _endpoint_state(partner_id: int) -> WebhookEndpointState:
    state, _ = WebhookEndpointState.objects.get_or_create(partner_id=partner_id)
    return state


def _endpoint_slot_take(*, partner_id: int, now: datetime, lease: datetime, held: datetime | None = None) -> bool:
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
    lease = _lease_end(now)
    with transaction.atomic():
        if Partner.objects.filter(pk=partner.pk, deliveries_paused=True).exists():
            return []
        failing = _endpoint_state(partner.pk).is_failing
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
        if failing and not _endpoint_slot_take(partner_id=partner.pk, now=now, lease=lease):
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
            _delivery_enqueue(log_pk, lease=lease)
            queued += 1
        healthy = not _endpoint_state(each.pk).is_failing
        if healthy and events_due(partner=each, now=now).exists():
            _dispatch_enqueue(partner_pk=each.pk, countdown=DISPATCH_CONTINUE_SECONDS)
    if queued:
        logger.info("webhook deliveries queued", extra={"count": queued})
    return queued


@dataclass(frozen=True)
class Claim:
    """An event this caller may attempt now, until ``lease``."""

    log: WebhookLog  # with its partner
    lease: datetime
    endpoint_failing: bool


@contextmanager
def _claim_transaction():
    """A transaction for a claim. On PostgreSQL its commit does not wait for the disk: a claim lost
    in a database crash only makes the event due again, which at-least-once delivery allows."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _event_claim(
    *, log_pk: int, lease: datetime | None, now: datetime, gate: DeliveryGate | None = None
) -> Claim | None:
    """Claim one event for an attempt now; None when it is not this caller's to send. ``gate`` is the
    event's delivery gate when the caller has already read it."""
    gate = gate or delivery_gate(log_pk=log_pk)
    if (
        gate is None
        or gate.status != WebhookLog.Status.PENDING
        or gate.partner_paused
        or gate.endpoint_busy(now=now, held=lease)
    ):
        return None  # the common refusals, decided without taking any lock
    # With the dispatcher's lease the row is ours while it still carries that lease; without one,
    # it must be due.
    due = Q(next_retry_at=lease) if lease is not None else Q(next_retry_at__lte=now)
    new_lease = _lease_end(now)
    failing = gate.endpoint_failures > 0
    with _claim_transaction():
        log = (
            WebhookLog.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("partner")
            .filter(due, pk=log_pk, status=WebhookLog.Status.PENDING, partner__deliveries_paused=False)
            .exclude(earlier_pending_of_same_order())  # an earlier event of the same order goes first
            .first()
        )
        if log is None:
            return None
        if failing and not _endpoint_slot_take(partner_id=log.partner_id, now=now, lease=new_lease, held=lease):
            return None
        WebhookLog.objects.filter(pk=log.pk).update(next_retry_at=new_lease)
        log.next_retry_at = new_lease
    return Claim(log=log, lease=new_lease, endpoint_failing=failing)


# --- Delivering -----------------------------------------------------------------------------------


def event_deliver(*, log_pk: int, lease: datetime | None = None) -> DeliveryOutcome:
    """Make one delivery attempt of an event if it is due and this caller may claim it.

    Safe to run twice and to kill at any line: the claim is a lease in the database, so a second
    run finds the row taken, and a run killed mid-send leaves the lease to expire, after which the
    event is sent again under the same id (receivers drop duplicates by ``webhook-id``).
    """
    now = timezone.now()
    gate = delivery_gate(log_pk=log_pk)
    # A failing endpoint gets one attempt at a time (the claim's slot in the database); any other
    # partner is capped at WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER attempts at once, so an endpoint that
    # starts hanging can never hold every worker thread. The cap is checked before the claim, so an
    # event over it costs one query and goes back to the queue untouched, under the same lease.
    token = None
    healthy = gate is not None and not gate.partner_paused and not gate.endpoint_failures
    if healthy and gate.status == WebhookLog.Status.PENDING:
        token = slot_take(partner_id=gate.partner_id, until_epoch=_lease_end(now).timestamp())
        if token is None:
            _delivery_enqueue(log_pk, lease=lease, countdown=SLOT_WAIT_SECONDS)
            return DeliveryOutcome.DEFERRED
    try:
        claim = _event_claim(log_pk=log_pk, lease=lease, now=now, gate=gate)
        if claim is None:
            return DeliveryOutcome.SKIPPED
        started_at = timezone.now()
        result = _attempt_send(log=claim.log)
        return _attempt_record(claim=claim, started_at=started_at, result=result)
    finally:
        if token is not None:
            slot_release(partner_id=gate.partner_id, token=token)


def _attempt_send(*, log: WebhookLog) -> DeliveryResult:
    partner = log.partner
    secrets = secrets_active(partner=partner)
    if not secrets:
        return DeliveryResult(status_code=None, duration_ms=0, error="no active webhook secret for the partner")
    headers = signature_headers(
        scheme=partner.webhook_scheme,
        secrets=secrets,
        msg_id=log.event_id,
        timestamp=int(time.time()),
        body=log.body,
    )
    return _client.post(url=partner.webhook_url, body=log.body.encode("utf-8"), headers=headers)


def retry_delay(*, retries: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``retries`` (1-based): the schedule's step plus up to the jitter
    share, and never less than what the receiver asked for in Retry-After."""
    step = settings.WEBHOOK_RETRY_SCHEDULE[retries - 1]
    delay = step * (1 + random.uniform(0, settings.WEBHOOK_RETRY_JITTER))
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS))
    return delay


def _attempt_record(*, claim: Claim, started_at: datetime, result: DeliveryResult) -> DeliveryOutcome:
    """Record the attempt, and move the event on only if this attempt still holds its lease."""
    log, now = claim.log, timezone.now()
    retries, delay = log.retries, None
    if result.delivered:
        outcome = DeliveryOutcome.SENT
        change = {"status": WebhookLog.Status.SENT, "sent_at": now, "next_retry_at": None}
    elif result.status_code == HTTP_GONE or retries >= len(settings.WEBHOOK_RETRY_SCHEDULE):
        outcome = DeliveryOutcome.FAILED
        change = {"status": WebhookLog.Status.FAILED, "next_retry_at": None}
    else:
        outcome = DeliveryOutcome.RETRY
        retries += 1
        delay = retry_delay(retries=retries, retry_after=result.retry_after)
        change = {"retries": retries, "next_retry_at": now + timedelta(seconds=delay)}
    response = {
        "statusCode": result.status_code,
        "body": result.response_excerpt,
        "error": result.error,
        "attemptedAt": started_at.isoformat(),
    }
    with transaction.atomic():
        owned = WebhookLog.objects.filter(
            pk=log.pk, status=WebhookLog.Status.PENDING, next_retry_at=claim.lease
        ).update(response=response, **change)
        if not owned:
            # A resend or a newer claim took the event over while this attempt ran (or it was
            # deleted): keep this attempt's record, change nothing else.
            if not WebhookLog.objects.filter(pk=log.pk).update(response=response):
                return DeliveryOutcome.SKIPPED
            outcome = DeliveryOutcome.SKIPPED
        WebhookAttempt.objects.create(
            log_id=log.pk,
            attempted_at=started_at,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
        recovered = _endpoint_state_record(claim=claim, result=result, now=now)
        if outcome != DeliveryOutcome.SKIPPED:
            _attempt_follow_up(log=log, outcome=outcome, delay=delay, recovered=recovered)
    data = log.payload.get("data") if isinstance(log.payload, dict) else None
    extra = {
        "event_id": log.event_id,
        "event_type": log.event_type,
        "order_id": data.get("orderId") if isinstance(data, dict) else None,
        "partner_id": log.partner_id,
        "status_code": result.status_code,
        "error": result.error,
        "retries": retries,
    }
    if outcome == DeliveryOutcome.FAILED:
        logger.error("webhook event failed for good (dead letter)", extra=extra)
    elif outcome == DeliveryOutcome.RETRY:
        logger.warning("webhook delivery failed, retry scheduled", extra=extra)
    else:
        logger.info("webhook attempt recorded", extra={**extra, "outcome": str(outcome)})
    return outcome


def _endpoint_state_record(*, claim: Claim, result: DeliveryResult, now: datetime) -> bool:
    """Count the endpoint's failures in a row; True when this 2xx ended a failing spell."""
    partner_id = claim.log.partner_id
    if result.delivered:
        return bool(
            WebhookEndpointState.objects.filter(pk=partner_id, consecutive_failures__gt=0).update(
                consecutive_failures=0, busy_until=None, last_success_at=now
            )
        )
    if result.status_code == HTTP_GONE:  # the endpoint answered; it refuses this event only
        if claim.endpoint_failing:
            WebhookEndpointState.objects.filter(pk=partner_id).update(busy_until=None)
        return False
    _endpoint_state(partner_id)
    WebhookEndpointState.objects.filter(pk=partner_id).update(
        consecutive_failures=F("consecutive_failures") + 1, busy_until=None, last_failure_at=now
    )
    return False


def _attempt_follow_up(*, log: WebhookLog, outcome: DeliveryOutcome, delay: float | None, recovered: bool) -> None:
    """Queue, after commit, what this outcome unblocks: the order's next event, a short retry, or the
    backlog of an endpoint that just answered again."""
    log_pk, order_id, partner_id = log.pk, log.order_id, log.partner_id
    if outcome == DeliveryOutcome.RETRY and delay is not None and delay <= settings.WEBHOOK_COUNTDOWN_MAX_SECONDS:
        transaction.on_commit(lambda: _delivery_enqueue(log_pk, countdown=delay))
    if outcome in (DeliveryOutcome.SENT, DeliveryOutcome.FAILED) and order_id is not None:
        transaction.on_commit(lambda: _order_next_event_enqueue(order_id=order_id, after_pk=log_pk))
    if recovered:
        transaction.on_commit(lambda: events_dispatch_due(partner=Partner.objects.get(pk=partner_id)))


def _order_next_event_enqueue(*, order_id: int, after_pk: int) -> None:
    next_pk = (
        WebhookLog.objects.filter(
            order_id=order_id, status=WebhookLog.Status.PENDING, pk__gt=after_pk, next_retry_at__lte=timezone.now()
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if next_pk is not None:
        _delivery_enqueue(next_pk)


# --- Staff controls -------------------------------------------------------------------------------


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
    transaction.on_commit(lambda: _delivery_enqueue(log_pk))
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


# --- Retention ------------------------------------------------------------------------------------


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
