"""What the attempts of a batch do to their events and their endpoint, recorded in one transaction.

Per attempt (``attempt_outcome``): a 2xx is SENT; a 410, or a failure once the retry schedule is
used up (a PING: after its third attempt), is FAILED (dead letter); any other failure is retried on
the schedule, never sooner than the receiver's Retry-After. An event moves on only if the attempt
still holds the event's lease (a resend or a newer claim may have taken it over meanwhile); the
attempt is logged either way. Per endpoint (``_endpoint_state_record``): its failures in a row and
since when it fails, reset by a success (a PING's 2xx too); a 410, or failing for
WEBHOOK_DISABLE_AFTER_DAYS, disables it (``controls.endpoint_disable``). A PING's failure or 410
counts for nothing: a test call never disables an endpoint. After the commit, what the outcomes
unblock is queued: short retries, each order's next event, and the backlog of an endpoint that
answers again.

What a receiver answered is cleaned before it is written (``text_clean``: no NUL, valid UTF-8, cut),
so recording an attempt does not fail on its answer; should a batch's transaction fail all the same,
its attempts are recorded one by one, and an attempt that still cannot be is recorded without its
answer's text, so that one bad row never loses the outcomes of the others.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.text import text_clean
from partners.models import Partner
from webhooks.client import ERROR_MAX_CHARS, RESPONSE_EXCERPT_BYTES
from webhooks.controls import endpoint_disable
from webhooks.dispatch import delivery_enqueue, endpoint_state, events_dispatch_due
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog
from webhooks.rows import events_update
from webhooks.sending import HTTP_GONE, Sent

# The attempt log lines keep the logger they have always had (operators filter on it).
logger = logging.getLogger("webhooks.delivery")


class DeliveryOutcome(StrEnum):
    SENT = "SENT"  # 2xx: delivered
    RETRY = "RETRY"  # failed; another attempt is scheduled
    FAILED = "FAILED"  # 410, or the retry schedule is used up (dead letter)
    SKIPPED = "SKIPPED"  # not claimed: not due, paused, held by order, endpoint busy, or taken over
    DEFERRED = "DEFERRED"  # not claimed: the partner has its maximum of attempts in flight


def retry_delay(*, retries: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``retries`` (1-based): the schedule's step plus up to the jitter
    share, and never less than what the receiver asked for in Retry-After."""
    step = settings.WEBHOOK_RETRY_SCHEDULE[retries - 1]
    delay = step * (1 + random.uniform(0, settings.WEBHOOK_RETRY_JITTER))
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS))
    return delay


@dataclass
class _Moved:
    """The outcome of one attempt and the event's new fields (all of them, so that one bulk update
    serves the batch; ``sent_at`` of a PENDING event is always empty)."""

    sent: Sent
    outcome: DeliveryOutcome
    status: str
    retries: int
    next_retry_at: datetime | None
    sent_at: datetime | None
    delay: float | None


# A PING (POST /t2mobile/webhooks/test) is attempted at most this many times.
PING_MAX_ATTEMPTS = 3


def _is_ping(sent: Sent) -> bool:
    return sent.event.event_type == WebhookLog.EventType.PING


def _schedule_used_up(sent: Sent) -> bool:
    """No attempt follows this failed one: the schedule is used up, or a PING had its three."""
    retries = sent.event.retries  # attempts before this one
    if _is_ping(sent) and retries + 1 >= PING_MAX_ATTEMPTS:
        return True
    return retries >= len(settings.WEBHOOK_RETRY_SCHEDULE)


def _counts_as_endpoint_failure(sent: Sent) -> bool:
    """A failed attempt that counts towards the endpoint's failures in a row and its failing spell;
    never a PING's (a test call tells the partner, not us, how its endpoint is doing)."""
    return sent.endpoint_failed and not _is_ping(sent)


def _disables_endpoint(sent: Sent) -> bool:
    """A 410 disables the endpoint, except a PING's: a PING never disables an endpoint."""
    return sent.result.status_code == HTTP_GONE and not _is_ping(sent)


def attempt_outcome(*, sent: Sent, now: datetime) -> _Moved:
    result, retries = sent.result, sent.event.retries
    if result.delivered:
        return _Moved(sent, DeliveryOutcome.SENT, WebhookLog.Status.SENT, retries, None, now, None)
    if result.status_code == HTTP_GONE or _schedule_used_up(sent):
        return _Moved(sent, DeliveryOutcome.FAILED, WebhookLog.Status.FAILED, retries, None, None, None)
    delay = retry_delay(retries=retries + 1, retry_after=result.retry_after)
    moved = now + timedelta(seconds=delay)
    return _Moved(sent, DeliveryOutcome.RETRY, WebhookLog.Status.PENDING, retries + 1, moved, None, delay)


@dataclass(frozen=True)
class BatchRecord:
    outcomes: dict[int, DeliveryOutcome]
    endpoint_failing: bool  # after this batch
    recovered: bool  # a 2xx of this batch ended a failing spell


def batch_record(
    *,
    partner_id: int,
    lease: datetime,
    attempts: Sequence[Sent],
    unsent: Sequence[int],
    endpoint_failing: bool,
    dispatch_when_recovered: bool = True,
) -> BatchRecord:
    """Record a batch's attempts and move their events on, in one transaction; give the ``unsent``
    events back (due now). ``endpoint_failing``: the endpoint was failing when the batch was claimed.
    Should that transaction fail, each attempt is recorded in one of its own (module docstring)."""
    try:
        return _batch_record(
            partner_id=partner_id,
            lease=lease,
            attempts=attempts,
            unsent=unsent,
            endpoint_failing=endpoint_failing,
            dispatch_when_recovered=dispatch_when_recovered,
        )
    except DatabaseError:
        if len(attempts) < 2 and not _has_answer_text(attempts):
            raise  # nothing to set apart: the database itself fails; the lease runs out and it is sent again
        logger.exception("webhook batch not recorded at once, recording its attempts one by one")
    outcomes: dict[int, DeliveryOutcome] = {}
    failing, recovered = endpoint_failing, False
    for index, sent in enumerate(attempts):
        kwargs = {
            "partner_id": partner_id,
            "lease": lease,
            "unsent": unsent if index == 0 else (),
            "endpoint_failing": failing,
            "dispatch_when_recovered": dispatch_when_recovered,
        }
        try:
            part = _batch_record(attempts=[sent], **kwargs)
        except DatabaseError:
            logger.exception("webhook attempt recorded without the text of its answer")
            part = _batch_record(attempts=[_without_answer_text(sent)], **kwargs)
        outcomes.update(part.outcomes)
        failing, recovered = part.endpoint_failing, recovered or part.recovered
    return BatchRecord(outcomes=outcomes, endpoint_failing=failing, recovered=recovered)


def _has_answer_text(attempts: Sequence[Sent]) -> bool:
    return any(sent.result.response_excerpt or sent.result.error for sent in attempts)


def _without_answer_text(sent: Sent) -> Sent:
    result = dataclasses.replace(sent.result, response_excerpt="", error="the answer could not be stored")
    return dataclasses.replace(sent, result=result)


def _batch_record(
    *,
    partner_id: int,
    lease: datetime,
    attempts: Sequence[Sent],
    unsent: Sequence[int],
    endpoint_failing: bool,
    dispatch_when_recovered: bool,
) -> BatchRecord:
    now = timezone.now()
    moves = [attempt_outcome(sent=sent, now=now) for sent in attempts]
    outcomes: dict[int, DeliveryOutcome] = {}
    with transaction.atomic():
        rows = WebhookLog.objects.select_for_update().filter(pk__in=[m.sent.event.pk for m in moves]).order_by("pk")
        held = {
            pk: status == WebhookLog.Status.PENDING and leased == lease
            for pk, status, leased in rows.values_list("pk", "status", "next_retry_at")
        }
        owned = [m for m in moves if held.get(m.sent.event.pk)]
        # A resend or a newer claim took these over while they were sent (or they were deleted):
        # keep the attempt's record, change nothing else.
        overtaken = [m for m in moves if m.sent.event.pk in held and not held[m.sent.event.pk]]
        for outcome in DeliveryOutcome:
            events_update({m.sent.event.pk: _row(m) for m in owned if m.outcome == outcome})
        events_update({m.sent.event.pk: {"response": _response(m)} for m in overtaken})
        WebhookAttempt.objects.bulk_create(
            WebhookAttempt(
                log_id=m.sent.event.pk,
                attempted_at=m.sent.started_at,
                duration_ms=m.sent.result.duration_ms,
                status_code=m.sent.result.status_code,
                error=_stored_error(m),
                response_excerpt=_stored_excerpt(m),
            )
            for m in moves
            if m.sent.event.pk in held
        )
        if unsent:
            WebhookLog.objects.filter(pk__in=unsent, status=WebhookLog.Status.PENDING, next_retry_at=lease).update(
                next_retry_at=now
            )
        # An attempt whose event is gone (deleted meanwhile) is neither logged nor counted.
        failing, recovered = _endpoint_state_record(
            partner_id=partner_id,
            attempts=[m.sent for m in moves if m.sent.event.pk in held],
            was_failing=endpoint_failing,
            now=now,
        )
        for m in owned:
            outcomes[m.sent.event.pk] = m.outcome
        _follow_up(
            partner_id=partner_id,
            moves=owned,
            recovered=recovered and dispatch_when_recovered,
        )
    for m in moves:
        _log(m, outcome=outcomes.get(m.sent.event.pk, DeliveryOutcome.SKIPPED), partner_id=partner_id)
    return BatchRecord(outcomes=outcomes, endpoint_failing=failing, recovered=recovered)


def _stored_excerpt(m: _Moved) -> str:
    return text_clean(m.sent.result.response_excerpt, max_chars=RESPONSE_EXCERPT_BYTES)


def _stored_error(m: _Moved) -> str:
    return text_clean(m.sent.result.error, max_chars=ERROR_MAX_CHARS)


def _response(m: _Moved) -> dict:
    return {
        "statusCode": m.sent.result.status_code,
        "body": _stored_excerpt(m),
        "error": _stored_error(m),
        "attemptedAt": m.sent.started_at.isoformat(),
    }


def _row(m: _Moved) -> dict:
    return {
        "status": m.status,
        "retries": m.retries,
        "next_retry_at": m.next_retry_at,
        "sent_at": m.sent_at,
        "response": _response(m),
    }


def _endpoint_state_record(
    *, partner_id: int, attempts: Sequence[Sent], was_failing: bool, now: datetime
) -> tuple[bool, bool]:
    """Count the endpoint's failures in a row over the batch's attempts, in the order they ended, and
    disable the endpoint on a 410 or once it has failed every attempt for WEBHOOK_DISABLE_AFTER_DAYS;
    ``(failing now, a 2xx ended a failing spell)``. A 410 is an answer: it is no failure in a row.
    A 2xx never enables a disabled endpoint again (staff do)."""
    succeeded, in_a_row, spell_started, gone = False, 0, None, False
    for sent in sorted(attempts, key=lambda s: s.started_at + timedelta(milliseconds=s.result.duration_ms)):
        if sent.result.delivered:
            succeeded, in_a_row, spell_started = True, 0, None
        elif _counts_as_endpoint_failure(sent):
            in_a_row += 1
            spell_started = spell_started or sent.started_at
        gone = gone or _disables_endpoint(sent)
    states = WebhookEndpointState.objects.filter(pk=partner_id)
    if gone:
        endpoint_disable(
            partner=Partner.objects.get(pk=partner_id), reason=WebhookEndpointState.DisabledReason.GONE, now=now
        )
    if succeeded and not in_a_row:
        recovered = states.filter(consecutive_failures__gt=0).update(
            consecutive_failures=0, busy_until=None, last_success_at=now, failing_since=None
        )
        return False, bool(recovered)
    if in_a_row:
        endpoint_state(partner_id)
        if succeeded:
            states.update(
                consecutive_failures=in_a_row,
                busy_until=None,
                last_success_at=now,
                last_failure_at=now,
                failing_since=spell_started,
            )
        else:
            states.update(
                consecutive_failures=F("consecutive_failures") + in_a_row,
                busy_until=None,
                last_failure_at=now,
                failing_since=Coalesce(F("failing_since"), spell_started),
            )
        _disable_if_failing_too_long(partner_id=partner_id, now=now)
        return True, False
    if was_failing:  # only 410s and PING failures (or nothing sent): give the one attempt slot back
        states.update(busy_until=None)
    return was_failing, False


def _disable_if_failing_too_long(*, partner_id: int, now: datetime) -> None:
    """Disable the endpoint when every attempt to it has failed for WEBHOOK_DISABLE_AFTER_DAYS."""
    failing_since = WebhookEndpointState.objects.filter(pk=partner_id, disabled_at__isnull=True).values_list(
        "failing_since", flat=True
    )
    since = failing_since.first()
    if since is not None and now - since >= timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS):
        endpoint_disable(
            partner=Partner.objects.get(pk=partner_id), reason=WebhookEndpointState.DisabledReason.FAILING, now=now
        )


def _follow_up(*, partner_id: int, moves: Sequence[_Moved], recovered: bool) -> None:
    """Queue, after commit, what these outcomes unblock: short retries, each order's next event, and
    the backlog of an endpoint that just answered again."""
    soon = settings.WEBHOOK_COUNTDOWN_MAX_SECONDS
    for m in moves:
        if m.outcome == DeliveryOutcome.RETRY and m.delay is not None and m.delay <= soon:
            transaction.on_commit(lambda pk=m.sent.event.pk, delay=m.delay: delivery_enqueue(pk, countdown=delay))
    finished = {
        m.sent.event.order_id: m.sent.event.pk
        for m in moves
        if m.outcome in (DeliveryOutcome.SENT, DeliveryOutcome.FAILED) and m.sent.event.order_id is not None
    }
    if finished:
        transaction.on_commit(lambda: _orders_next_event_enqueue(finished=finished))
    if recovered:
        transaction.on_commit(lambda: events_dispatch_due(partner=Partner.objects.get(pk=partner_id)))


def _orders_next_event_enqueue(*, finished: dict[int, int]) -> None:
    """For each order whose event ``finished[order]`` is done, queue its next PENDING event if due."""
    pending = WebhookLog.objects.filter(status=WebhookLog.Status.PENDING, next_retry_at__lte=timezone.now())
    rows = pending.filter(order_id__in=finished).order_by("order_id", "pk").values_list("order_id", "pk")
    queued: set[int] = set()
    for order_id, pk in rows:
        if order_id not in queued and pk > finished[order_id]:
            queued.add(order_id)
            delivery_enqueue(pk)


def _log(m: _Moved, *, outcome: DeliveryOutcome, partner_id: int) -> None:
    event, result = m.sent.event, m.sent.result
    extra = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "order_id": event.order_ref,
        "partner_id": partner_id,
        "status_code": result.status_code,
        "error": result.error,
        "retries": m.retries,
    }
    if outcome == DeliveryOutcome.FAILED:
        logger.error("webhook event failed for good (dead letter)", extra=extra)
    elif outcome == DeliveryOutcome.RETRY:
        logger.warning("webhook delivery failed, retry scheduled", extra=extra)
    else:
        logger.info("webhook attempt recorded", extra={**extra, "outcome": str(outcome)})
