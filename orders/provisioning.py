"""Provisioning of an accepted order in Zoho, and every status change of an order after intake.

``order_provision`` (run by the task ``orders.provision_order``) takes the order from PROCESSING to
FULFILLED or FAILED exactly once, whatever fails on the way:

- A session-level PostgreSQL advisory lock per order (``pg_try_advisory_lock``) lets one run work on
  an order; a duplicate run (the sweeper and a late message, two deliveries) exits at once instead
  of waiting. The lock is held across the Zoho calls while every database write commits in its own
  short transaction, so each Zoho id is stored the moment we have it; a killed worker's connection
  closes and PostgreSQL frees the lock.
- Each attempt is claimed (``attempts`` + 1, ``attempt_running``, ``next_attempt_at`` = now +
  ``RUNNING_LEASE``) before any Zoho call, and its outcome clears ``attempt_running``. A sales order
  is created only after looking it up by its id or by ``reference_number`` = orderId, except on the
  very first attempt ever, when none can exist yet.
- A dead attempt is told from a running one at once, not after the lease: ``attempt_running`` with
  nobody holding the order's advisory lock means its worker died (SIGKILL, OOM, a lost machine).
  The sweeper (every minute) looks for these, and so does the next run that takes the lock. Either
  then waits ``DEAD_ATTEMPT_SETTLE`` (the longest a Zoho call of ours can last) before the next
  attempt, so that a create the dead worker had in flight has landed in Zoho and is found by its
  reference instead of being made twice.
- Status changes go through one function per transition; each locks the order row
  (``select_for_update``), checks the current state, and writes the event row in the same
  transaction, so running one twice is harmless.

Transient Zoho errors retry on ``BACKOFF_SCHEDULE`` (with jitter) for up to ``RETRY_WINDOW``; waits
up to ``CELERY_COUNTDOWN_MAX`` go to Celery as a countdown, longer ones are only written to
``next_attempt_at`` and queued by the sweeper (``orders_redrive_stalled``), because the Redis
transport redelivers or loses long countdowns.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from catalogue.models import Tenure
from integrations.zoho.client import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    LineItem,
    SalesOrder,
    ZohoClient,
    ZohoCustomerUnknownError,
    zoho_client,
)
from integrations.zoho.errors import ZohoAuthError, ZohoError, ZohoPermanentError, ZohoWaitError
from orders.events import order_event_data, order_event_record
from orders.models import Fulfilment, Order
from orders.provisioners import Licence, provisioner_for
from t2mobile_portal.logging import order_id_var

logger = logging.getLogger(__name__)

#: Waits after the 1st, 2nd, … transient failure; then ``BACKOFF_THEN_EVERY`` until ``RETRY_WINDOW``.
BACKOFF_SCHEDULE: tuple[int, ...] = (30, 120, 600, 1800, 3600, 7200)
BACKOFF_THEN_EVERY = 4 * 3600
RETRY_WINDOW = 24 * 3600
BACKOFF_JITTER = 0.1
#: Retries due within this many seconds go to Celery as a countdown; later ones wait for the sweeper.
CELERY_COUNTDOWN_MAX = 60
#: A running attempt pushes ``next_attempt_at`` this far ahead: if its worker dies, the sweeper
#: queues the order again after this.
RUNNING_LEASE = timedelta(minutes=15)
#: The sweeper leaves a due order alone this long after it became due: the time between an intake's
#: commit and the publish of its job (a queued job is known by its marker, see ``orders.tasks``).
SWEEP_GRACE = timedelta(seconds=30)
#: After a worker died mid-attempt, the next attempt waits this long: every Zoho call the dead worker
#: had in flight has been answered or dropped by then (connect plus read timeout of the client).
DEAD_ATTEMPT_SETTLE = timedelta(seconds=CONNECT_TIMEOUT + READ_TIMEOUT)
#: A job that arrives this much before the order's next attempt is due leaves it alone (clock skew
#: between hosts is allowed for); the job queued for the due time, or the sweeper, runs it.
EARLY_TOLERANCE = timedelta(seconds=5)
SWEEP_BATCH_SIZE = 100
SWEEP_MAX_BATCHES = 20
#: Set in Redis when a provisioning job is published, cleared when it starts (see ``orders.tasks``).
QUEUED_MARKER_KEY = "provisioning:queued:{order_pk}"
QUEUED_MARKER_SECONDS = 3600
_ADVISORY_NAMESPACE = 0x5052 << 48  # "PR", keeps these keys apart from other advisory locks
_ADVISORY_ORDER_BITS = (1 << 48) - 1

REASON_REJECTED = "The order could not be provisioned: our licensing system refused the product or customer details."
REASON_EXHAUSTED = "The order could not be provisioned within 24 hours; IconTech support has been notified."


class OrderStateError(Exception):
    """The order is not in a state that allows this change (e.g. re-driving a FULFILLED order)."""


def retry_delay(failures: int) -> int | None:
    """Nominal seconds to wait after the ``failures``-th transient failure; None once the next
    attempt would fall outside ``RETRY_WINDOW`` (the retries are exhausted)."""
    total = 0
    delay = 0
    for number in range(1, failures + 1):
        delay = BACKOFF_SCHEDULE[number - 1] if number <= len(BACKOFF_SCHEDULE) else BACKOFF_THEN_EVERY
        total += delay
    if failures < 1 or total > RETRY_WINDOW:
        return None
    return delay


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


# --- Queueing -------------------------------------------------------------------------------------


def order_enqueue(order_pk: int, *, countdown: float | None = None) -> bool:
    """Publish ``orders.provision_order``. When the broker cannot take it, the order is made due
    for the sweeper at once (its grace is for jobs that were published), so that the first sweep
    after the broker is back queues it."""
    from orders.tasks import provision_order  # the tasks module imports this one (Celery's side)

    try:
        provision_order.apply_async(args=[order_pk], countdown=countdown)
    except Exception as exc:  # kombu raises many types
        logger.warning("provisioning not queued, the sweeper will retry: %s", type(exc).__name__)
        Fulfilment.objects.filter(order_id=order_pk, attempt_running=False, next_attempt_at__isnull=False).update(
            next_attempt_at=F("next_attempt_at") - SWEEP_GRACE
        )
        return False
    return True


def _enqueue_on_commit(order_pk: int, *, countdown: float | None = None) -> None:
    transaction.on_commit(lambda: order_enqueue(order_pk, countdown=countdown))


def queued_marker_set(order_pk: int) -> None:
    try:
        cache.set(QUEUED_MARKER_KEY.format(order_pk=order_pk), 1, timeout=QUEUED_MARKER_SECONDS)
    except Exception:  # Redis down: the sweeper simply queues again
        logger.debug("queued marker not set")


def queued_marker_clear(order_pk: int) -> None:
    try:
        cache.delete(QUEUED_MARKER_KEY.format(order_pk=order_pk))
    except Exception:
        logger.debug("queued marker not cleared")


# --- The run lock ---------------------------------------------------------------------------------


def _lock_key(order_pk: int) -> int:
    return _ADVISORY_NAMESPACE | (order_pk & _ADVISORY_ORDER_BITS)


def _orders_locked() -> set[int]:
    """The order pks whose provisioning lock some session holds now (PostgreSQL's lock table: a
    killed worker's session is gone from it as soon as its connection closes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
            WHERE locktype = 'advisory' AND objsubid = 1 AND granted
              AND classid::bigint >> 16 = %s
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """,
            [_ADVISORY_NAMESPACE >> 48],
        )
        return {key & _ADVISORY_ORDER_BITS for (key,) in cursor.fetchall()}


@contextmanager
def _provisioning_lock(order_pk: int) -> Iterator[bool]:
    """True when this run may work on the order; False when another run holds it."""
    if connection.vendor == "postgresql":
        key = _lock_key(order_pk)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    # SQLite (``make run`` without PostgreSQL): a cache lock with the lease as its lifetime.
    lock_key = f"provisioning:lock:{order_pk}"
    held = cache.add(lock_key, 1, timeout=int(RUNNING_LEASE.total_seconds()))
    try:
        yield held
    finally:
        if held:
            cache.delete(lock_key)


# --- Transitions (one function each; guard, change, event, one transaction) -----------------------


def _locked(order_pk: int) -> tuple[Order, Fulfilment]:
    order = Order.objects.select_for_update().get(pk=order_pk)
    fulfilment = Fulfilment.objects.select_for_update().get(order_id=order_pk)
    order.fulfilment = fulfilment  # the serializer reads the fulfilment through the order
    return order, fulfilment


@dataclass(frozen=True)
class _Attempt:
    order: Order
    fulfilment: Fulfilment
    first_ever: bool


def _attempt_start(order_pk: int) -> _Attempt | None:
    """Claim one attempt (the caller holds the order's lock): PROCESSING order, PENDING fulfilment,
    attempt due; else nothing to do now."""
    with transaction.atomic():
        try:
            order, fulfilment = _locked(order_pk)
        except (Order.DoesNotExist, Fulfilment.DoesNotExist):
            logger.warning("provisioning: order %s has no fulfilment row", order_pk)
            return None
        if order.status != Order.Status.PROCESSING or fulfilment.status != Fulfilment.Status.PENDING:
            return None
        now = timezone.now()
        if fulfilment.attempt_running:
            # Nobody else holds the lock, yet the last attempt never wrote its outcome: it died.
            _dead_attempts_settle(rows=[(fulfilment.pk, order_pk)], now=now)
            return None
        if fulfilment.next_attempt_at is not None and fulfilment.next_attempt_at > now + EARLY_TOLERANCE:
            return None  # a duplicate or early job: the attempt is not due yet
        # No earlier attempt ever reached Zoho: no sales order of ours can exist there yet.
        first_ever = fulfilment.attempts == 0 and not fulfilment.last_error and not fulfilment.sales_order_id
        fulfilment.attempts += 1
        fulfilment.last_attempt_at = now
        fulfilment.next_attempt_at = now + RUNNING_LEASE
        fulfilment.attempt_running = True
        fulfilment.save(
            update_fields=["attempts", "last_attempt_at", "next_attempt_at", "attempt_running", "updated_at"]
        )
    return _Attempt(order=order, fulfilment=fulfilment, first_ever=first_ever)


def _dead_attempts_settle(*, rows: list[tuple[int, int]], now) -> None:
    """Inside a transaction holding these fulfilment rows: their attempts died mid-flight. The next
    attempt of each is queued ``DEAD_ATTEMPT_SETTLE`` from now (see the module docstring)."""
    due = now + DEAD_ATTEMPT_SETTLE
    Fulfilment.objects.filter(pk__in=[pk for pk, _ in rows]).update(
        attempt_running=False,
        next_attempt_at=due,
        last_error="the worker of the last attempt was lost mid-attempt; retrying",
        updated_at=now,
    )
    for _, order_pk in rows:
        _enqueue_on_commit(order_pk, countdown=DEAD_ATTEMPT_SETTLE.total_seconds())
    logger.warning("provisioning attempts lost with their worker, retry queued", extra={"count": len(rows)})


def _sales_order_id_store(*, order_pk: int, salesorder_id: str) -> None:
    """Written the moment Zoho answers, in its own transaction, so a crash right after keeps it."""
    with transaction.atomic():
        Order.objects.filter(pk=order_pk).update(zoho_sales_order_id=salesorder_id)
        Fulfilment.objects.filter(order_id=order_pk).update(sales_order_id=salesorder_id)


def _attempt_end(fulfilment: Fulfilment) -> None:
    """Inside the outcome's transaction: the running attempt is over (whatever the outcome)."""
    if fulfilment.attempt_running:
        fulfilment.attempt_running = False
        Fulfilment.objects.filter(pk=fulfilment.pk).update(attempt_running=False)


def order_fulfil(*, order_pk: int, sales_order: SalesOrder, licence: Licence) -> Order:
    """PROCESSING → FULFILLED with the fulfilment ACTIVE and ORDER_FULFILLED (or, for a renewal,
    the subscription extended and SUBSCRIPTION_RENEWED), in one transaction."""
    from t2mobile_portal.times import iso_utc

    with transaction.atomic():
        order, fulfilment = _locked(order_pk)
        if order.status != Order.Status.PROCESSING or fulfilment.status != Fulfilment.Status.PENDING:
            _attempt_end(fulfilment)  # staff changed the order meanwhile: their change stands
            return order
        now = timezone.now()
        fulfilment.attempt_running = False
        fulfilment.status = Fulfilment.Status.ACTIVE
        fulfilment.activation_reference = licence.activation_reference
        fulfilment.sales_order_id = sales_order.salesorder_id
        fulfilment.next_attempt_at = None
        renewed = order.type == Order.Type.RENEWAL and order.renewal_of_id is not None
        if renewed:
            from orders.subscriptions import subscription_renewal_expiry, subscription_root_order

            # The subscription is the NEW order's fulfilment; earlier renewals mirror its expiry.
            root_pk = subscription_root_order(order.renewal_of).pk
            subscription = list(
                Fulfilment.objects.select_for_update()
                .filter(
                    Q(order_id=root_pk)
                    | Q(
                        order__partner_id=order.partner_id,
                        activation_reference=licence.activation_reference,
                        status__in=[Fulfilment.Status.ACTIVE, Fulfilment.Status.EXPIRED],
                    )
                )
                .exclude(pk=fulfilment.pk)
                .order_by("pk")
            )
            root = next((row for row in subscription if row.order_id == root_pk), None)
            previous = root.expires_at if root is not None else None
            starts_at = max(previous, now) if previous else now
            expires_at = subscription_renewal_expiry(current_expires_at=previous, now=now, tenure=order.tenure)
            for row in subscription:
                row.expires_at = expires_at
                if row.status == Fulfilment.Status.EXPIRED:
                    row.status = Fulfilment.Status.ACTIVE
                row.save(update_fields=["expires_at", "status", "updated_at"])
            fulfilment.starts_at, fulfilment.expires_at = starts_at, expires_at
        else:
            fulfilment.starts_at, fulfilment.expires_at = licence.starts_at, licence.expires_at
        fulfilment.save()
        order.status = Order.Status.FULFILLED
        order.activation_reference = licence.activation_reference
        order.zoho_sales_order_id = sales_order.salesorder_id
        order.failure_reason = ""
        order.save(
            update_fields=["status", "activation_reference", "zoho_sales_order_id", "failure_reason", "updated_at"]
        )
        data = order_event_data(order)
        if renewed:
            data.update(
                {
                    "renewalOf": order.renewal_of.order_id,
                    "previousExpiresAt": iso_utc(previous) if previous else None,
                    "expiresAt": iso_utc(fulfilment.expires_at),
                }
            )
            order_event_record(order=order, event_type="SUBSCRIPTION_RENEWED", data=data)
        else:
            order_event_record(order=order, event_type="ORDER_FULFILLED", data=data)
    logger.info("order fulfilled", extra={"order_id": order.order_id, "sales_order_id": sales_order.salesorder_id})
    return order


def order_mark_failed(*, order: Order, reason: str, error: str = "") -> Order:
    """PROCESSING or PENDING → FAILED with ``reason`` (shown to the partner) and ORDER_FAILED.

    ``error`` (Zoho's code and message) goes to ``fulfilment.last_error`` only. A FAILED or
    FULFILLED order is left as it is.
    """

    with transaction.atomic():
        order, fulfilment = _locked(order.pk)
        if order.status not in (Order.Status.PROCESSING, Order.Status.PENDING):
            return order
        order.status = Order.Status.FAILED
        order.failure_reason = reason[:300]
        order.save(update_fields=["status", "failure_reason", "updated_at"])
        if fulfilment.status == Fulfilment.Status.PENDING:
            fulfilment.status = Fulfilment.Status.FAILED
        fulfilment.last_error = (error or reason)[:1000]
        fulfilment.next_attempt_at = None
        fulfilment.attempt_running = False
        fulfilment.save(update_fields=["status", "last_error", "next_attempt_at", "attempt_running", "updated_at"])
        order_event_record(order=order, event_type="ORDER_FAILED", data=order_event_data(order))
    logger.warning("order failed", extra={"order_id": order.order_id, "reason": reason})
    return order


def _zoho_wait(*, order: Order, fulfilment: Fulfilment, error: ZohoWaitError, describe: str) -> None:
    """Zoho takes no calls for a while (the budget paused, the daily cap, our credentials in their
    back-off): the attempt is given back, so the order's own retry schedule is not used up, and the
    order waits until Zoho takes calls again. Orders that waited are queued oldest first (the sweeper
    orders by due time, then by order)."""
    wait = max(1.0, float(error.retry_after or 0))
    fulfilment.attempts = max(0, fulfilment.attempts - 1)
    fulfilment.last_error = describe
    fulfilment.next_attempt_at = timezone.now() + timedelta(seconds=wait)
    fulfilment.save(update_fields=["attempts", "last_error", "next_attempt_at", "updated_at"])
    if wait <= CELERY_COUNTDOWN_MAX:
        _enqueue_on_commit(order.pk, countdown=wait)
    logger.info(
        "provisioning waits for Zoho",
        extra={"order_id": order.order_id, "wait_seconds": round(wait), "error": describe},
    )


def _attempt_failed(*, order_pk: int, error: ZohoError | Exception) -> None:
    """A transient failure: schedule the next attempt, or fail the order once retries run out."""
    describe = error.describe() if isinstance(error, ZohoError) else f"{type(error).__name__}: unexpected error"
    with transaction.atomic():
        order, fulfilment = _locked(order_pk)
        _attempt_end(fulfilment)
        if order.status != Order.Status.PROCESSING or fulfilment.status != Fulfilment.Status.PENDING:
            return
        if isinstance(error, ZohoWaitError):
            _zoho_wait(order=order, fulfilment=fulfilment, error=error, describe=describe)
            return
        delay = retry_delay(fulfilment.attempts)
        if delay is None and not isinstance(error, ZohoAuthError):
            exhausted = True
        else:
            # An authentication outage is ours to fix, never the order's fault: keep retrying.
            exhausted = False
            delay = delay or BACKOFF_THEN_EVERY
        if exhausted:
            fulfilment.last_error = describe
            fulfilment.save(update_fields=["last_error", "updated_at"])
        else:
            wait = max(_jittered(delay), float(getattr(error, "retry_after", None) or 0))
            fulfilment.last_error = describe
            fulfilment.next_attempt_at = timezone.now() + timedelta(seconds=wait)
            fulfilment.save(update_fields=["last_error", "next_attempt_at", "updated_at"])
            if wait <= CELERY_COUNTDOWN_MAX:
                _enqueue_on_commit(order_pk, countdown=wait)
            logger.info(
                "provisioning retry scheduled",
                extra={
                    "order_id": order.order_id,
                    "attempt": fulfilment.attempts,
                    "wait_seconds": round(wait),
                    "error": describe,
                },
            )
            return
    order_mark_failed(order=order, reason=REASON_EXHAUSTED, error=f"retries exhausted; last: {describe}")


# --- The flow -------------------------------------------------------------------------------------


def _sales_order_obtain(*, attempt: _Attempt, client: ZohoClient, provisioner) -> SalesOrder:
    """The order's Zoho sales order: by stored id, else by reference, else created (once)."""
    order, fulfilment = attempt.order, attempt.fulfilment
    known_id = order.zoho_sales_order_id or fulfilment.sales_order_id
    if known_id:
        return client.sales_order_get(salesorder_id=known_id)
    if not attempt.first_ever:
        # An earlier attempt may have created it and died, or timed out on the create ("unknown").
        found = client.sales_order_find_by_reference(reference=order.order_id)
        if found is not None:
            _sales_order_id_store(order_pk=order.pk, salesorder_id=found.salesorder_id)
            return found
    return _sales_order_create(order=order, client=client, provisioner=provisioner)


def _sales_order_create(*, order: Order, client: ZohoClient, provisioner) -> SalesOrder:
    """``POST /salesorders`` on the order's contact, with the activation reference already in it.

    A cached contact Zoho no longer knows (merged or deleted by staff, a sandbox restarted) is
    forgotten and found or created again, once, at once: no sales order was made by the refused
    create, so posting again cannot make two.
    """
    from orders.zoho_customers import zoho_contact_forget, zoho_contact_id, zoho_customer_notes

    annotations = provisioner.sales_order_annotations(order=order)
    notes = "\n\n".join(part for part in (annotations.notes, zoho_customer_notes(order=order)) if part)
    fields = {
        "reference": order.order_id,
        "on": timezone.localdate(),
        "line_items": [
            LineItem(
                item_id=order.product_id,
                quantity=order.quantity,
                rate=order.unit_price,
                description=f"{Tenure(order.tenure).label} ({order.type.lower()} order {order.order_id})",
            )
        ],
        "notes": notes,
        "custom_fields": annotations.custom_fields or None,
    }
    contact_id = zoho_contact_id(order=order, client=client)
    try:
        sales_order = client.sales_order_create(customer_id=contact_id, **fields)
    except ZohoCustomerUnknownError:
        logger.warning("zoho no longer knows the cached contact; finding or creating it again")
        zoho_contact_forget(order=order, contact_id=contact_id)
        sales_order = client.sales_order_create(customer_id=zoho_contact_id(order=order, client=client), **fields)
    _sales_order_id_store(order_pk=order.pk, salesorder_id=sales_order.salesorder_id)
    return sales_order


def order_provision(*, order_pk: int) -> None:
    """Provision one order in Zoho; see the module docstring for why it is safe twice and killed."""
    with _provisioning_lock(order_pk) as held:
        if not held:
            logger.info("provisioning: order %s is being provisioned by another run", order_pk)
            return
        attempt = _attempt_start(order_pk)
        if attempt is None:
            return
        order_id_var.set(attempt.order.order_id)
        try:
            client = zoho_client()
            provisioner = provisioner_for(order=attempt.order, client=client)
            sales_order = _sales_order_obtain(attempt=attempt, client=client, provisioner=provisioner)
            licence = provisioner.provision(order=attempt.order, sales_order=sales_order)
        except ZohoPermanentError as exc:
            order_mark_failed(order=attempt.order, reason=REASON_REJECTED, error=exc.describe())
            return
        except ZohoError as exc:
            _attempt_failed(order_pk=order_pk, error=exc)
            return
        except Exception as exc:
            # A bug or a database hiccup: retried on the same schedule, so it fails at most after a day.
            logger.exception("provisioning: unexpected error")
            _attempt_failed(order_pk=order_pk, error=exc)
            return
        order_fulfil(order_pk=order_pk, sales_order=sales_order, licence=licence)


# --- Staff actions (the admin and ``manage.py redrive_order`` call these) -------------------------


def order_redrive(*, order: Order) -> Order:
    """FAILED, stuck or on-hold → PROCESSING with a fresh retry budget, queued on commit."""
    with transaction.atomic():
        order, fulfilment = _locked(order.pk)
        if order.status == Order.Status.FULFILLED:
            raise OrderStateError("a fulfilled order cannot be re-driven")
        previous = fulfilment.last_error or order.failure_reason
        order.status = Order.Status.PROCESSING
        order.failure_reason = ""
        order.save(update_fields=["status", "failure_reason", "updated_at"])
        if fulfilment.status == Fulfilment.Status.FAILED:
            fulfilment.status = Fulfilment.Status.PENDING
        fulfilment.attempts = 0
        # Non-empty on purpose: the next attempt must look for a sales order made by earlier ones.
        fulfilment.last_error = f"re-driven; before: {previous}"[:1000] if previous else "re-driven"
        fulfilment.next_attempt_at = timezone.now()
        fulfilment.save(update_fields=["status", "attempts", "last_error", "next_attempt_at", "updated_at"])
        _enqueue_on_commit(order.pk)
    return order


def order_hold(*, order: Order) -> Order:
    """PROCESSING → PENDING (on hold): the sweeper and any queued job leave it alone."""
    with transaction.atomic():
        order, _ = _locked(order.pk)
        if order.status == Order.Status.PROCESSING:
            order.status = Order.Status.PENDING
            order.save(update_fields=["status", "updated_at"])
        elif order.status != Order.Status.PENDING:
            raise OrderStateError(f"a {order.status} order cannot be put on hold")
    return order


def order_release(*, order: Order) -> Order:
    """PENDING → PROCESSING, queued on commit."""
    with transaction.atomic():
        order, fulfilment = _locked(order.pk)
        if order.status == Order.Status.PENDING:
            order.status = Order.Status.PROCESSING
            order.save(update_fields=["status", "updated_at"])
            fulfilment.next_attempt_at = timezone.now()
            fulfilment.save(update_fields=["next_attempt_at", "updated_at"])
            _enqueue_on_commit(order.pk)
        elif order.status != Order.Status.PROCESSING:
            raise OrderStateError(f"a {order.status} order cannot be released")
    return order


# --- The sweeper ----------------------------------------------------------------------------------


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
            locked = _orders_locked() if rows else set()
            dead = [(pk, order_pk) for pk, order_pk in rows if order_pk not in locked]
            if dead:
                _dead_attempts_settle(rows=dead, now=now)
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
                markers = cache.get_many([QUEUED_MARKER_KEY.format(order_pk=o) for _, o in rows])
            except Exception:
                markers = {}
            # Every row seen gets a fresh grace period; only those without a queued job are queued.
            Fulfilment.objects.filter(pk__in=[pk for pk, _ in rows]).update(next_attempt_at=now, updated_at=now)
            for _, order_pk in rows:
                if QUEUED_MARKER_KEY.format(order_pk=order_pk) not in markers:
                    _enqueue_on_commit(order_pk)
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
