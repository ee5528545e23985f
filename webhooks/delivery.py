"""Delivery: one attempt of one event, from its claim to the record of its outcome.

An attempt first *claims* its row in a short transaction (``SELECT … FOR UPDATE SKIP LOCKED``, then
``next_retry_at`` is pushed forward as a lease), sends outside any transaction, and records the
outcome in a second short transaction, only if it still holds the lease. A claim is refused while
the partner is paused, while an earlier event of the same order is PENDING, and, while the
partner's endpoint is failing, while another attempt to it is in flight. The outcome moves the event
on (sent, retry on the schedule, dead letter), counts the endpoint's failures, and queues what it
unblocks.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from partners.models import Partner
from webhooks.client import DeliveryResult, WebhookClient
from webhooks.dispatch import delivery_enqueue, endpoint_slot_take, endpoint_state, events_dispatch_due, lease_end
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog
from webhooks.selectors import DeliveryGate, delivery_gate, earlier_pending_of_same_order, secrets_active
from webhooks.signing import signature_headers
from webhooks.slots import slot_release, slot_take

logger = logging.getLogger(__name__)

HTTP_GONE = 410
# An event over its partner's cap of attempts in flight is tried again this much later.
SLOT_WAIT_SECONDS = 1.0

_client = WebhookClient()


class DeliveryOutcome(StrEnum):
    SENT = "SENT"  # 2xx: delivered
    RETRY = "RETRY"  # failed; another attempt is scheduled
    FAILED = "FAILED"  # 410, or the retry schedule is used up (dead letter)
    SKIPPED = "SKIPPED"  # not claimed: not due, paused, held by order, endpoint busy, or taken over
    DEFERRED = "DEFERRED"  # not claimed: the partner has its maximum of attempts in flight; requeued


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
    new_lease = lease_end(now)
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
        if failing and not endpoint_slot_take(partner_id=log.partner_id, now=now, lease=new_lease, held=lease):
            return None
        WebhookLog.objects.filter(pk=log.pk).update(next_retry_at=new_lease)
        log.next_retry_at = new_lease
    return Claim(log=log, lease=new_lease, endpoint_failing=failing)


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
        token = slot_take(partner_id=gate.partner_id, until_epoch=lease_end(now).timestamp())
        if token is None:
            delivery_enqueue(log_pk, lease=lease, countdown=SLOT_WAIT_SECONDS)
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
    endpoint_state(partner_id)
    WebhookEndpointState.objects.filter(pk=partner_id).update(
        consecutive_failures=F("consecutive_failures") + 1, busy_until=None, last_failure_at=now
    )
    return False


def _attempt_follow_up(*, log: WebhookLog, outcome: DeliveryOutcome, delay: float | None, recovered: bool) -> None:
    """Queue, after commit, what this outcome unblocks: the order's next event, a short retry, or the
    backlog of an endpoint that just answered again."""
    log_pk, order_id, partner_id = log.pk, log.order_id, log.partner_id
    if outcome == DeliveryOutcome.RETRY and delay is not None and delay <= settings.WEBHOOK_COUNTDOWN_MAX_SECONDS:
        transaction.on_commit(lambda: delivery_enqueue(log_pk, countdown=delay))
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
        delivery_enqueue(next_pk)
