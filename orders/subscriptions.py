"""Subscriptions over time: renewal arithmetic, expiry reminders and expiry.

A subscription is the fulfilment of a NEW order. A RENEWAL order's fulfilment mirrors the extended
expiry of the subscription it renews (orders-and-jobs.md, Renewals), so reminders and the
SUBSCRIPTION_EXPIRED event are sent for the NEW order's fulfilment only; otherwise a renewed
subscription would be reminded once per renewal order. RENEWAL fulfilments are still moved to
EXPIRED with their subscription, silently.

Both nightly services walk the ``(status, expires_at)`` index in keyset order, one batch per
transaction, locking the batch with ``SELECT … FOR UPDATE SKIP LOCKED``: their cost follows the rows
due, not the table, memory stays at one batch, and two runs at once share the rows instead of
waiting for each other. Each event carries a unique ``dedup_key``, so a second run, a second beat or
a manual re-run never sends anything twice.

Reminder thresholds (``REMINDER_DAYS``, e.g. ``[7, 1]``): a subscription is due for threshold ``d``
when ``as_of < expires_at <= as_of + d days``. Each run sends, per subscription, the reminder of the
*smallest* threshold that applies, once (dedup key ``EXPIRY_REMINDER:<order pk>:<expiresAt>:<d>``).
So a night missed is caught up on the next run (the 7-day reminder then says ``daysLeft: 6``), and a
subscription already inside the 1-day window that never got its 7-day reminder gets the 1-day one
only, never a stale 7-day one on top. A renewal moves ``expires_at``, so the keys change and the new
date is reminded again.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalogue.models import Tenure
from orders.events import order_event_record, subscription_event_data
from orders.models import Fulfilment, Order
from webhooks.models import WebhookLog

logger = logging.getLogger(__name__)

REMINDER_BATCH_SIZE = 500
EXPIRY_BATCH_SIZE = 500
ONE_DAY = timedelta(days=1)


# --- Renewals -------------------------------------------------------------------------------------


def subscription_renewal_expiry(*, current_expires_at: datetime | None, now: datetime, tenure: str | int) -> datetime:
    """The new expiry of a renewed subscription: max(current expiry, now) + tenure.

    Tenure is counted in calendar months on the wall clock of ``TIME_ZONE`` (Jan 31 + 1 month =
    Feb 28, or Feb 29 in a leap year), so a subscription never drifts by the UTC offset. A
    subscription that has already expired (or never had an expiry) starts again from ``now``.
    """
    months = tenure if isinstance(tenure, int) else Tenure.months_of(tenure)
    start = now if current_expires_at is None else max(current_expires_at, now)
    return timezone.localtime(start) + relativedelta(months=months)


def subscription_root_order(order: Order) -> Order:
    """The NEW order a (possibly chained) RENEWAL order belongs to: the row that is reminded and expired."""
    seen: set[int] = set()
    while order.renewal_of_id is not None and order.pk not in seen:
        seen.add(order.pk)
        order = order.renewal_of
    return order


def _due_batch(*, base: Q, after: tuple[datetime, int] | None, batch_size: int) -> list[Fulfilment]:
    """One locked batch in ``(expires_at, id)`` order after the keyset cursor ``after``, orders attached.

    The locking query reads the fulfilments table alone, so PostgreSQL walks the ``(status,
    expires_at)`` index and stops after ``batch_size`` rows; a join here lets the planner scan all
    orders instead. The batch's orders (and their partner) come in one more query.
    """
    queryset = Fulfilment.objects.filter(base)
    if after is not None:
        last_expires_at, last_pk = after
        # The ``>=`` bound lets PostgreSQL start the index range scan at the cursor.
        queryset = queryset.filter(expires_at__gte=last_expires_at).filter(
            Q(expires_at__gt=last_expires_at) | Q(pk__gt=last_pk)
        )
    batch = list(queryset.select_for_update(skip_locked=True).order_by("expires_at", "pk")[:batch_size])
    orders = Order.objects.select_related("partner").in_bulk([fulfilment.order_id for fulfilment in batch])
    for fulfilment in batch:
        fulfilment.order = orders[fulfilment.order_id]
    return batch


# --- Expiry reminders -----------------------------------------------------------------------------


@dataclass
class ReminderRun:
    scanned: int = 0
    sent: int = 0
    already_sent: int = 0
    batches: int = 0


def reminder_dedup_key(*, order_pk: int, expires_at: datetime, days: int) -> str:
    from t2mobile_portal.times import iso_utc

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
    base = Q(status=Fulfilment.Status.ACTIVE, expires_at__gt=as_of, expires_at__lte=horizon)
    cursor: tuple[datetime, int] | None = None
    while True:
        with transaction.atomic():
            batch = _due_batch(base=base, after=cursor, batch_size=batch_size)
            if not batch:
                break
            run.batches += 1
            cursor = (batch[-1].expires_at, batch[-1].pk)
            due = []
            for fulfilment in batch:
                if fulfilment.order.type != Order.Type.NEW:
                    continue  # a renewal's fulfilment mirrors its subscription, which is reminded
                run.scanned += 1
                days = reminder_threshold(expires_at=fulfilment.expires_at, as_of=as_of, thresholds=thresholds)
                key = reminder_dedup_key(order_pk=fulfilment.order_id, expires_at=fulfilment.expires_at, days=days)
                due.append((fulfilment, key))
            # One query per batch skips what an earlier run sent, so a re-run costs reads only.
            sent_before = set(
                WebhookLog.objects.filter(dedup_key__in=[key for _, key in due]).values_list("dedup_key", flat=True)
            )
            for fulfilment, key in due:
                if key in sent_before:
                    run.already_sent += 1
                    continue
                data = subscription_event_data(fulfilment=fulfilment)
                data["daysLeft"] = math.ceil((fulfilment.expires_at - as_of) / ONE_DAY)
                log = order_event_record(
                    order=fulfilment.order, event_type=WebhookLog.EventType.EXPIRY_REMINDER, data=data, dedup_key=key
                )
                if log is None:  # a concurrent run sent it between our check and our insert
                    run.already_sent += 1
                else:
                    run.sent += 1
        if len(batch) < batch_size:
            break
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
    from t2mobile_portal.times import iso_utc

    return f"SUBSCRIPTION_EXPIRED:{order_pk}:{iso_utc(expires_at)}"


def fulfilment_expire(*, fulfilment: Fulfilment, as_of: datetime) -> bool:
    """ACTIVE → EXPIRED for one locked fulfilment past its expiry, with SUBSCRIPTION_EXPIRED for a
    subscription (NEW order). The guard makes a second call a no-op; the caller holds the row lock
    inside its transaction. Returns whether the status changed."""

    if fulfilment.status != Fulfilment.Status.ACTIVE or fulfilment.expires_at is None:
        return False
    if fulfilment.expires_at > as_of:
        return False
    fulfilment.status = Fulfilment.Status.EXPIRED
    fulfilment.save(update_fields=["status", "updated_at"])
    order = fulfilment.order
    if order.type == Order.Type.NEW:
        order_event_record(
            order=order,
            event_type=WebhookLog.EventType.SUBSCRIPTION_EXPIRED,
            data=subscription_event_data(fulfilment=fulfilment),
            dedup_key=expired_dedup_key(order_pk=order.pk, expires_at=fulfilment.expires_at),
        )
    return True


def subscriptions_expire(*, as_of: datetime | None = None, batch_size: int = EXPIRY_BATCH_SIZE) -> ExpiryRun:
    """Move every ACTIVE fulfilment whose ``expires_at`` is at or before ``as_of`` to EXPIRED.

    Safe to run twice at once or to kill at any line: batches are locked with SKIP LOCKED and
    committed one by one, the transition is guarded, and the event has a unique dedup key.
    """
    as_of = as_of or timezone.now()
    base = Q(status=Fulfilment.Status.ACTIVE, expires_at__lte=as_of)
    run = ExpiryRun()
    cursor: tuple[datetime, int] | None = None
    while True:
        with transaction.atomic():
            batch = _due_batch(base=base, after=cursor, batch_size=batch_size)
            if not batch:
                break
            run.batches += 1
            cursor = (batch[-1].expires_at, batch[-1].pk)
            for fulfilment in batch:
                if fulfilment_expire(fulfilment=fulfilment, as_of=as_of):
                    run.expired += 1
                    run.events += fulfilment.order.type == Order.Type.NEW
        if len(batch) < batch_size:
            break
    logger.info(
        "subscriptions expired: %d (%d events) in %d batches",
        run.expired,
        run.events,
        run.batches,
        extra={"as_of": as_of.isoformat()},
    )
    return run
