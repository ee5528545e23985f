"""The sweeper (``orders.redrive_stalled_orders``, every minute): the safety net that makes "accepted
means done" true.

It queues PROCESSING orders whose attempt is due and that no job is queued for (lost jobs, a
flushed Redis, a broker that was down at intake, a job lost between broker and worker: a queued
marker is believed only while provisioning jobs wait in the queue), and settles the attempts whose worker died
(``attempt_running`` while nobody holds the order's run lock), retried ``DEAD_ATTEMPT_SETTLE`` later.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from core.redis_roles import limits
from orders.models import Fulfilment, Order
from orders.provisioning import dead_attempts_settle
from orders.queueing import QUEUED_MARKER_KEY, SWEEP_GRACE, order_enqueue_on_commit, provisioning_jobs_waiting
from orders.run_lock import orders_locked

logger = logging.getLogger(__name__)

SWEEP_BATCH_SIZE = 100
SWEEP_MAX_BATCHES = 20


def _dead_attempts_find(*, now, batch_size: int) -> int:
    """Settle the attempts whose worker died (``attempt_running``, no lock held); how many."""
    if connection.vendor != "postgresql":
        return 0  # without advisory locks, a dead attempt is found when its lease runs out
    found, after = 0, 0
    for _ in range(SWEEP_MAX_BATCHES):
        with transaction.atomic():
            rows = list(
                Fulfilment.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(attempt_running=True, status=Fulfilment.Status.PENDING, order__status=Order.Status.PROCESSING)
                .filter(order_id__gt=after)
                .order_by("order_id")
                .values_list("pk", "order_id")[:batch_size]
            )
            # Read after the rows are locked: an attempt that ends now cannot clear its flag before
            # this transaction ends, and it holds its advisory lock until it has.
            locked = orders_locked() if rows else set()
            dead = [(pk, order_pk) for pk, order_pk in rows if order_pk not in locked]
            if dead:
                dead_attempts_settle(rows=dead, now=now)
        found += len(dead)
        if len(rows) < batch_size:
            break
        after = rows[-1][1]
    return found


def orders_redrive_stalled(*, now=None, batch_size: int = SWEEP_BATCH_SIZE) -> int:
    """Queue PROCESSING orders whose attempt is due and that no job is queued for: lost jobs, a
    flushed Redis, a broker that was down at intake; and the attempts whose worker died, one
    ``DEAD_ATTEMPT_SETTLE`` later. Returns how many were queued."""
    now = now or timezone.now()
    queued = _dead_attempts_find(now=now, batch_size=batch_size)
    # A marker says a job waits in the queue. With none waiting there, every marker of a due order
    # is left from a job lost between broker and worker (Redis gone just as a worker took it): queue
    # those orders now rather than when the marker lapses.
    believe_markers = provisioning_jobs_waiting() != 0
    for _ in range(SWEEP_MAX_BATCHES):
        with transaction.atomic():
            rows = list(
                Fulfilment.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=Fulfilment.Status.PENDING, order__status=Order.Status.PROCESSING)
                .filter(Q(next_attempt_at__lte=now - SWEEP_GRACE) | Q(next_attempt_at__isnull=True))
                .order_by("next_attempt_at", "order_id")
                .values_list("pk", "order_id")[:batch_size]
            )
            if not rows:
                break
            try:
                keys = [QUEUED_MARKER_KEY.format(order_pk=o) for _, o in rows]
                markers = limits.get_many(keys) if believe_markers else {}
            except Exception:
                markers = {}
            # Every row seen gets a fresh grace period; only those without a queued job are queued.
            Fulfilment.objects.filter(pk__in=[pk for pk, _ in rows]).update(next_attempt_at=now, updated_at=now)
            for _, order_pk in rows:
                if QUEUED_MARKER_KEY.format(order_pk=order_pk) not in markers:
                    order_enqueue_on_commit(order_pk)
                    queued += 1
        if len(rows) < batch_size:
            break
    if queued:
        logger.info("sweeper queued stalled orders", extra={"count": queued})
    return queued


def provisioning_overview() -> dict:
    """Small figures for health/admin: orders waiting and the oldest due attempt."""
    waiting = Fulfilment.objects.filter(status=Fulfilment.Status.PENDING, order__status=Order.Status.PROCESSING)
    return {"waiting": waiting.count(), "oldestDue": waiting.aggregate(at=Min("next_attempt_at"))["at"]}
