"""Subscriptions over time: opening and renewing one, expiry reminders and expiry.

A subscription (``Subscription``) is what the customer holds over all its orders: the provisioning
of a NEW order opens it, each RENEWAL's extends it (orders-and-jobs.md, Renewals), and every order
of it points at it (``Order.subscription``). A fulfilment keeps the period its own order paid for,
as history. Reminders and SUBSCRIPTION_EXPIRED are about the subscription, so a renewed one is
reminded once, not once per order; they name the order that opened it (``origin_order``).

Both nightly services walk the ``(status, expires_at)`` index of the subscriptions in keyset order
(``subscriptions_in_batches``), one batch per transaction, locking the batch with ``SELECT … FOR
UPDATE SKIP LOCKED``: their cost follows the rows due, not the table, memory stays at one batch, and
two runs at once share the rows instead of waiting for each other. Each event carries a unique
``dedup_key``, so a second run, a second beat or a manual re-run never sends anything twice.

Reminder thresholds (``REMINDER_DAYS``, e.g. ``[7, 1]``): a subscription is due for threshold ``d``
when ``as_of < expires_at <= as_of + d days``. Each run sends, per subscription, the reminder of the
*smallest* threshold that applies, once (dedup key ``EXPIRY_REMINDER:<origin order pk>:<expiresAt>:
<d>``, the key of the days when the subscription was the NEW order's fulfilment, so nothing is sent
twice across that change). So a night missed is caught up on the next run (the 7-day reminder then
says ``daysLeft: 6``), and a subscription already inside the 1-day window that never got its 7-day
reminder gets the 1-day one only, never a stale 7-day one on top. A renewal moves ``expires_at``, so
the keys change and the new date is reminded again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from catalogue.models import Tenure
from core.times import iso_utc
from orders.events import order_event_record, subscription_event_data
from orders.models import Fulfilment, Order, Subscription
from orders.provisioners import Licence
from webhooks.models import WebhookLog

logger = logging.getLogger(__name__)

REMINDER_BATCH_SIZE = 500
EXPIRY_BATCH_SIZE = 500
ONE_DAY = timedelta(days=1)


class SubscriptionMissing(Exception):
    """A RENEWAL names an order that belongs to no subscription (not provisioned, or data that the
    migration of the subscriptions did not cover): nothing to extend."""


# --- Opening and renewing -------------------------------------------------------------------------


def subscription_renewal_expiry(*, current_expires_at: datetime | None, now: datetime, tenure: str | int) -> datetime:
    """The new expiry of a renewed subscription: max(current expiry, now) + tenure.

    Tenure is counted in calendar months on the wall clock of ``TIME_ZONE`` (Jan 31 + 1 month =
    Feb 28, or Feb 29 in a leap year), so a subscription never drifts by the UTC offset. A
    subscription that has already expired (or never had an expiry) starts again from ``now``.
    """
    months = tenure if isinstance(tenure, int) else Tenure.months_of(tenure)
    start = now if current_expires_at is None else max(current_expires_at, now)
    return timezone.localtime(start) + relativedelta(months=months)


def subscription_open(*, order: Order, licence: Licence) -> Subscription:
    """Inside the transaction that fulfils the NEW ``order``: its subscription, ACTIVE for the
    licence's period."""
    return Subscription.objects.create(
        partner_id=order.partner_id,
        customer_id=order.customer_id,
        product_id=order.product_id,
        activation_reference=licence.activation_reference,
        origin_order=order,
        status=Subscription.Status.ACTIVE,
        starts_at=licence.starts_at,
        expires_at=licence.expires_at,
    )


@dataclass(frozen=True)
class Renewal:
    subscription: Subscription
    previous_expires_at: datetime
    starts_at: datetime  # of the period the renewal paid for: max(previous expiry, now)
    expires_at: datetime


def subscription_renew(*, order: Order, now: datetime) -> Renewal:
    """Inside the transaction that fulfils the RENEWAL ``order`` (the caller holds its lock and its
    guard): extend the subscription of ``order.renewal_of`` by the order's tenure, ACTIVE again if it
    had expired. The subscription's row lock orders concurrent renewals of it one after the other."""
    subscription_pk = order.renewal_of.subscription_id
    if subscription_pk is None:
        raise SubscriptionMissing(f"order {order.renewal_of.order_id} renewed by {order.order_id} has no subscription")
    subscription = Subscription.objects.select_for_update().get(pk=subscription_pk)
    previous = subscription.expires_at
    subscription.expires_at = subscription_renewal_expiry(current_expires_at=previous, now=now, tenure=order.tenure)
    subscription.status = Subscription.Status.ACTIVE
    subscription.save(update_fields=["expires_at", "status", "updated_at"])
    return Renewal(
        subscription=subscription,
        previous_expires_at=previous,
        starts_at=max(previous, now),
        expires_at=subscription.expires_at,
    )


# --- The nightly scans ----------------------------------------------------------------------------


def _due_batch(*, due: Q, after: tuple[datetime, int] | None, batch_size: int) -> list[Subscription]:
    """One locked batch in ``(expires_at, id)`` order after the keyset cursor ``after``, with the
    origin orders (and their partner) attached.

    The locking query reads the subscriptions table alone, so PostgreSQL walks the ``(status,
    expires_at)`` index and stops after ``batch_size`` rows; a join here lets the planner scan all
    orders instead. The batch's origin orders come in one more query.
    """
    queryset = Subscription.objects.filter(due)
    if after is not None:
        last_expires_at, last_pk = after
        # The ``>=`` bound lets PostgreSQL start the index range scan at the cursor.
        queryset = queryset.filter(expires_at__gte=last_expires_at).filter(
            Q(expires_at__gt=last_expires_at) | Q(pk__gt=last_pk)
        )
    batch = list(queryset.select_for_update(skip_locked=True).order_by("expires_at", "pk")[:batch_size])
    orders = Order.objects.select_related("partner").in_bulk([subscription.origin_order_id for subscription in batch])
    for subscription in batch:
        subscription.origin_order = orders[subscription.origin_order_id]
    return batch


def subscriptions_in_batches(*, due: Q, batch_size: int, handle: Callable[[list[Subscription]], None]) -> int:
    """Call ``handle`` with each locked batch of the subscriptions matching ``due``, in keyset order,
    each batch in a transaction of its own (committed before the next is read). Returns the number
    of batches. Rows another run holds are skipped, not waited for."""
    batches = 0
    cursor: tuple[datetime, int] | None = None
    while True:
        with transaction.atomic():
            batch = _due_batch(due=due, after=cursor, batch_size=batch_size)
            if not batch:
                break
            batches += 1
            cursor = (batch[-1].expires_at, batch[-1].pk)
            handle(batch)
        if len(batch) < batch_size:
            break
    return batches


# --- Expiry reminders -----------------------------------------------------------------------------


@dataclass
class ReminderRun:
    scanned: int = 0
    sent: int = 0
    already_sent: int = 0
    batches: int = 0


def reminder_dedup_key(*, order_pk: int, expires_at: datetime, days: int) -> str:
    return f"EXPIRY_REMINDER:{order_pk}:{iso_utc(expires_at)}:{days}"


def reminder_threshold(*, expires_at: datetime, as_of: datetime, thresholds: list[int]) -> int | None:
    """The smallest threshold (days) whose window ``(as_of, as_of + d]`` holds ``expires_at``."""
    if expires_at <= as_of:
        return None
    for days in sorted(set(thresholds)):
        if expires_at <= as_of + days * ONE_DAY:
            return days
    return None


def expiry_reminders_send(
    *, as_of: datetime | None = None, thresholds: list[int] | None = None, batch_size: int = REMINDER_BATCH_SIZE
) -> ReminderRun:
    """Send one EXPIRY_REMINDER per due subscription and threshold (see the module docstring).

    Safe to run twice at once or to kill at any line: each batch commits its events with its own
    transaction, the rows are shared out with SKIP LOCKED, and the unique dedup key refuses a second
    event for the same subscription, expiry date and threshold.
    """

    as_of = as_of or timezone.now()
    thresholds = [int(d) for d in (thresholds if thresholds is not None else settings.REMINDER_DAYS) if int(d) > 0]
    run = ReminderRun()
    if not thresholds:
        return run
    horizon = as_of + max(thresholds) * ONE_DAY

    def remind(batch: list[Subscription]) -> None:
        due = []
        for subscription in batch:
            run.scanned += 1
            expires_at = subscription.expires_at
            days = reminder_threshold(expires_at=expires_at, as_of=as_of, thresholds=thresholds)
            key = reminder_dedup_key(order_pk=subscription.origin_order_id, expires_at=expires_at, days=days)
            due.append((subscription, key))
        # One query per batch skips what an earlier run sent, so a re-run costs reads only.
        sent_before = set(
            WebhookLog.objects.filter(dedup_key__in=[key for _, key in due]).values_list("dedup_key", flat=True)
        )
        for subscription, key in due:
            if key in sent_before:
                run.already_sent += 1
                continue
            data = subscription_event_data(subscription=subscription)
            data["daysLeft"] = math.ceil((subscription.expires_at - as_of) / ONE_DAY)
            log = order_event_record(
                order=subscription.origin_order,
                event_type=WebhookLog.EventType.EXPIRY_REMINDER,
                data=data,
                dedup_key=key,
            )
            if log is None:  # a concurrent run sent it between our check and our insert
                run.already_sent += 1
            else:
                run.sent += 1

    run.batches = subscriptions_in_batches(
        due=Q(status=Subscription.Status.ACTIVE, expires_at__gt=as_of, expires_at__lte=horizon),
        batch_size=batch_size,
        handle=remind,
    )
    logger.info(
        "expiry reminders: %d sent, %d already sent, %d scanned in %d batches",
        run.sent,
        run.already_sent,
        run.scanned,
        run.batches,
        extra={"as_of": as_of.isoformat(), "thresholds": thresholds},
    )
    return run


# --- Expiry ---------------------------------------------------------------------------------------


@dataclass
class ExpiryRun:
    expired: int = 0
    events: int = 0
    batches: int = 0


def expired_dedup_key(*, order_pk: int, expires_at: datetime) -> str:
    return f"SUBSCRIPTION_EXPIRED:{order_pk}:{iso_utc(expires_at)}"


def subscription_expire(*, subscription: Subscription, as_of: datetime) -> bool:
    """ACTIVE → EXPIRED for one locked subscription past its expiry, its last fulfilment (the ACTIVE
    one of its orders that ends latest) with it, and one SUBSCRIPTION_EXPIRED. The guard makes a
    second call a no-op; the caller holds the subscription's row lock inside its transaction and
    ``subscription.origin_order`` is loaded. Returns whether the status changed."""

    if subscription.status != Subscription.Status.ACTIVE or subscription.expires_at > as_of:
        return False
    subscription.status = Subscription.Status.EXPIRED
    subscription.save(update_fields=["status", "updated_at"])
    last = (
        Fulfilment.objects.select_for_update(of=("self",))
        .filter(order__subscription=subscription, status=Fulfilment.Status.ACTIVE)
        .order_by(F("expires_at").desc(nulls_last=True), "-pk")
        .first()
    )
    if last is not None:
        last.status = Fulfilment.Status.EXPIRED
        last.save(update_fields=["status", "updated_at"])
    order_event_record(
        order=subscription.origin_order,
        event_type=WebhookLog.EventType.SUBSCRIPTION_EXPIRED,
        data=subscription_event_data(subscription=subscription),
        dedup_key=expired_dedup_key(order_pk=subscription.origin_order_id, expires_at=subscription.expires_at),
    )
    return True


def subscriptions_expire(*, as_of: datetime | None = None, batch_size: int = EXPIRY_BATCH_SIZE) -> ExpiryRun:
    """Move every ACTIVE subscription whose ``expires_at`` is at or before ``as_of`` to EXPIRED.

    Safe to run twice at once or to kill at any line: batches are locked with SKIP LOCKED and
    committed one by one, the transition is guarded, and the event has a unique dedup key.
    """
    as_of = as_of or timezone.now()
    run = ExpiryRun()

    def expire(batch: list[Subscription]) -> None:
        for subscription in batch:
            if subscription_expire(subscription=subscription, as_of=as_of):
                run.expired += 1
                run.events += 1

    run.batches = subscriptions_in_batches(
        due=Q(status=Subscription.Status.ACTIVE, expires_at__lte=as_of), batch_size=batch_size, handle=expire
    )
    logger.info(
        "subscriptions expired: %d (%d events) in %d batches",
        run.expired,
        run.events,
        run.batches,
        extra={"as_of": as_of.isoformat()},
    )
    return run
