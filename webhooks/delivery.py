"""Delivery: the attempts of claimed events, from their claim to the record of their outcomes.

A ``webhooks.deliver_webhook`` message names one event (a new event queued on its own, a short
retry, a resend) or a batch that the dispatcher claimed (``log_pks`` under ``lease``). Its delivery

1. reads the partner's gate and, for a healthy endpoint, takes one of the partner's
   WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER slots (``slots.py``) per lane it will send on; with none free,
   it gives its events back (due again) to the attempts in flight, with a dispatch a second later;
2. takes its events in one short transaction (``SELECT … FOR UPDATE SKIP LOCKED``, lease renewed):
   only rows still due (or still under the dispatcher's lease), of an unpaused partner whose
   endpoint is not disabled, with no earlier PENDING event of the same order; while the endpoint is
   failing, one row, and only with the endpoint's one attempt slot;
3. sends them outside any transaction, on its lanes (``sending.py``), and records every outcome in
   one transaction (``outcomes.py``);
4. for a dispatcher's batch, while the endpoint answers, claims the partner's next batch and goes
   on, for up to DRAIN_SECONDS, then hands over to a dispatch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.instruments import WEBHOOK_DEAD_LETTERS
from partners.models import Partner
from webhooks.dispatch import claim_transaction, dispatch_enqueue, endpoint_slot_take, events_claim_due, lease_end
from webhooks.models import WebhookLog
from webhooks.outcomes import DeliveryOutcome, batch_record
from webhooks.selectors import DeliveryGate, delivery_gate, earlier_pending_of_same_order, secrets_active
from webhooks.sending import ClaimedEvent, Target, batch_send
from webhooks.slots import Slots, slots_release, slots_take

__all__ = ["DeliveryOutcome", "batch_deliver", "event_deliver"]

# A batch's delivery goes on claiming its partner's next batches for this long, then hands over.
DRAIN_SECONDS = 10.0
# Events given back for want of a free slot are dispatched again this much later.
SLOT_WAIT_SECONDS = 1.0
# Every attempt ends this long before its claim's lease does, for the record; the system check
# ``webhooks.E001`` (``checks.py``) keeps WEBHOOK_TIMEOUT_SECONDS + this within the lease.
RECORD_MARGIN_SECONDS = 5.0


def event_deliver(*, log_pk: int, lease: datetime | None = None) -> DeliveryOutcome:
    """Make one delivery attempt of an event if it is due and this caller may claim it (``lease``:
    the claim a dispatcher made for this message, in messages queued before batches).

    Safe to run twice and to kill at any line: the claim is a lease in the database, so a second
    run finds the row taken, and a run killed mid-send leaves the lease to expire, after which the
    event is sent again under the same id (receivers drop duplicates by ``webhook-id``).
    """
    return _deliver(log_pks=[log_pk], lease=lease).outcomes.get(log_pk, DeliveryOutcome.SKIPPED)


def batch_deliver(*, log_pks: list[int], lease: datetime) -> dict[int, DeliveryOutcome]:
    """Send a batch the dispatcher claimed until ``lease``; then, while the partner's endpoint
    answers, claim and send its next batches, for up to DRAIN_SECONDS.

    Safe to run twice and to kill at any line, as ``event_deliver``: a second run finds the rows no
    longer under ``lease``; a killed run's leases expire and the periodic dispatch claims them again.
    """
    started = time.monotonic()
    outcomes: dict[int, DeliveryOutcome] = {}
    partner = None
    while True:
        report = _deliver(log_pks=log_pks, lease=lease, drain=True)
        outcomes.update(report.outcomes)
        if not report.go_on or report.partner_id is None:
            return outcomes
        if time.monotonic() - started >= DRAIN_SECONDS:
            dispatch_enqueue(partner_pk=report.partner_id, countdown=0)
            return outcomes
        partner = partner or Partner.objects.get(pk=report.partner_id)
        claims = events_claim_due(partner=partner)
        if not claims:
            return outcomes
        log_pks, lease = [log_pk for log_pk, _ in claims], claims[0][1]


@dataclass(frozen=True)
class _Report:
    outcomes: dict[int, DeliveryOutcome] = field(default_factory=dict)
    partner_id: int | None = None
    go_on: bool = False  # every event was sent and the endpoint answered: a next batch may follow


def _deliver(*, log_pks: list[int], lease: datetime | None, drain: bool = False) -> _Report:
    now = timezone.now()
    gate = delivery_gate(log_pk=min(log_pks))
    refused = (
        gate is None
        or gate.partner_paused
        or gate.endpoint_disabled
        or gate.endpoint_busy(now=now, held=lease)
        or (len(log_pks) == 1 and gate.status != WebhookLog.Status.PENDING)
    )
    if refused:  # the common refusals, decided without taking any lock
        _give_back(log_pks, lease=lease, now=now)
        return _Report()
    failing = gate.endpoint_failures > 0
    # Every partner is capped at WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER attempts at once, so that an
    # endpoint that starts hanging can never hold every worker thread; a failing endpoint's one
    # attempt (its slot is in the database) takes one too, as the attempts of its healthy spell may
    # still be in flight.
    wanted = 1 if failing else min(settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER, len(log_pks))
    # The slots lapse with the claim's lease, after every attempt's deadline (RECORD_MARGIN_SECONDS
    # before the lease); they are given back as soon as the attempts are recorded.
    lease_until = lease_end(now)
    slots = slots_take(partner_id=gate.partner_id, until_epoch=lease_until.timestamp(), wanted=wanted)
    if not slots:
        _give_back(log_pks, lease=lease, now=now)
        if not failing:  # a failing endpoint's next attempt is the dispatcher's
            dispatch_enqueue(partner_pk=gate.partner_id, countdown=SLOT_WAIT_SECONDS)
        return _Report(outcomes=dict.fromkeys(log_pks, DeliveryOutcome.DEFERRED), partner_id=gate.partner_id)
    try:
        return _take_send_record(
            log_pks=log_pks,
            lease=lease,
            now=now,
            new_lease=lease_until,
            gate=gate,
            slots=slots,
            failing=failing,
            drain=drain,
        )
    finally:
        slots_release(slots)


def _take_send_record(
    *,
    log_pks: list[int],
    lease: datetime | None,
    now: datetime,
    new_lease: datetime,
    gate: DeliveryGate,
    slots: Slots,
    failing: bool,
    drain: bool,
) -> _Report:
    events = _take(
        log_pks=log_pks, lease=lease, now=now, new_lease=new_lease, partner_id=gate.partner_id, failing=failing
    )
    if not events:
        return _Report(partner_id=gate.partner_id)
    # Every attempt has ended (WebhookClient.send cuts it) this long before the lease runs out.
    end_by = time.monotonic() + (new_lease - timezone.now()).total_seconds() - RECORD_MARGIN_SECONDS
    target = Target(
        url=gate.webhook_url,
        scheme=gate.webhook_scheme,
        secrets=secrets_active(partner_id=gate.partner_id),
        partner=gate.partner_code,
    )
    sent, unsent = batch_send(
        events=events,
        target=target,
        lanes=1 if failing else slots.count,
        end_by=end_by,
        paused=lambda: Partner.objects.filter(pk=gate.partner_id, deliveries_paused=True).exists(),
    )
    record = batch_record(
        partner_id=gate.partner_id,
        lease=new_lease,
        attempts=sent,
        unsent=[event.pk for event in unsent],
        endpoint_failing=failing,
        dispatch_when_recovered=not drain,  # a drain goes on by itself
    )
    dead = sum(1 for outcome in record.outcomes.values() if outcome == DeliveryOutcome.FAILED)
    if dead:
        WEBHOOK_DEAD_LETTERS.labels(gate.partner_code).inc(dead)
    if unsent and not record.endpoint_failing:
        # Stopped by the lease's window (a slow endpoint) or a pause: a dispatch takes the rest, or,
        # for a paused partner, leaves it.
        dispatch_enqueue(partner_pk=gate.partner_id, countdown=0)
    return _Report(
        outcomes=record.outcomes, partner_id=gate.partner_id, go_on=not unsent and not record.endpoint_failing
    )


def _take(
    *, log_pks: list[int], lease: datetime | None, now: datetime, new_lease: datetime, partner_id: int, failing: bool
) -> list[ClaimedEvent]:
    """Claim ``log_pks`` for attempts now, under the fresh lease ``new_lease``; the events taken.

    With the dispatcher's lease a row is ours while it still carries that lease; without one, it must
    be due. Rows of the batch not taken go back to due.
    """
    due = Q(next_retry_at=lease) if lease is not None else Q(next_retry_at__lte=now)
    with claim_transaction():
        rows = list(
            WebhookLog.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                due,
                pk__in=log_pks,
                status=WebhookLog.Status.PENDING,
                partner__deliveries_paused=False,
                partner__webhook_endpoint_state__disabled_at__isnull=True,  # no state yet: not disabled
            )
            .exclude(earlier_pending_of_same_order())  # an earlier event of the same order goes first
            .order_by("pk")
            .values_list("pk", "event_id", "event_type", "body", "retries", "order_id", "payload__data__orderId")
        )
        if failing:  # one attempt at a time, in the endpoint's slot
            rows = rows[:1]
            if rows and not endpoint_slot_take(partner_id=partner_id, now=now, lease=new_lease, held=lease):
                rows = []
        events = [ClaimedEvent(*row[:6], order_ref=row[6] if isinstance(row[6], str) else None) for row in rows]
        if events:
            WebhookLog.objects.filter(pk__in=[event.pk for event in events]).update(next_retry_at=new_lease)
        taken = {event.pk for event in events}
        _give_back([pk for pk in log_pks if pk not in taken], lease=lease, now=now)
    return events


def _give_back(log_pks: list[int], *, lease: datetime | None, now: datetime) -> None:
    """Rows still under the dispatcher's ``lease`` that this delivery does not send are due again
    (rather than waiting for the lease to run out)."""
    if lease is not None and log_pks:
        WebhookLog.objects.filter(pk__in=log_pks, status=WebhookLog.Status.PENDING, next_retry_at=lease).update(
            next_retry_at=now
        )
