"""Provisioning of an accepted order in Zoho, and every status change of an order after intake.

``order_provision`` (run by the task ``orders.provision_order``) takes the order from PROCESSING to
FULFILLED or FAILED exactly once, whatever fails on the way:

- A session-level PostgreSQL advisory lock per order (``pg_try_advisory_lock``) lets one run work on
  an order; a duplicate run (the sweeper and a late message, two deliveries) exits at once instead
  of waiting. The lock is held across the Zoho calls while every database write commits in its own
  short transaction, so each Zoho id is stored the moment we have it; a killed worker's connection
  closes and PostgreSQL frees the lock.
- Each attempt is claimed (``attempts`` + 1, ``attempt_running``, ``next_attempt_at`` = now +
  ``RUNNING_LEASE``) before any Zoho call, and its outcome clears ``attempt_running``. The sales
  order is named by the partner and the order (``orders/sales_order_naming.py``): with our numbering
  Zoho itself refuses a second one, and the refusal is followed by a look-up by that exact number;
  with Zoho's numbering, every attempt but the very first looks it up by its exact reference on the
  order's contact before creating it.
- A dead attempt is told from a running one at once, not after the lease: ``attempt_running`` with
  nobody holding the order's advisory lock means its worker died (SIGKILL, OOM, a lost machine).
  The sweeper (every minute) looks for these, and so does the next run that takes the lock. Either
  then waits ``DEAD_ATTEMPT_SETTLE`` (the longest a Zoho call of ours can last) before the next
  attempt, so that a create the dead worker had in flight has landed in Zoho and is found by its
  number or reference instead of being made twice.
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
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from catalogue.models import Tenure
from core.logging import order_id_var
from integrations.zoho.auth import CONNECT_TIMEOUT, READ_TIMEOUT
from integrations.zoho.client import ZohoClient, zoho_client
from integrations.zoho.errors import (
    ZohoAuthError,
    ZohoCustomerUnknownError,
    ZohoError,
    ZohoPermanentError,
    ZohoWaitError,
)
from integrations.zoho.values import LineItem, SalesOrder
from orders.models import Fulfilment, Order
from orders.provisioners import SalesOrderAnnotations, provisioner_for
from orders.queueing import order_enqueue_on_commit
from orders.run_lock import RUNNING_LEASE, provisioning_lock
from orders.sales_order_naming import legacy_sales_order_find, sales_order_naming_fix, sales_order_naming_new
from orders.transitions import attempt_end, order_fulfil, order_locked, order_mark_failed
from orders.zoho_customers import zoho_contact_forget, zoho_contact_id, zoho_customer_notes

logger = logging.getLogger(__name__)

#: Waits after the 1st, 2nd, … transient failure; then ``BACKOFF_THEN_EVERY`` until ``RETRY_WINDOW``.
BACKOFF_SCHEDULE: tuple[int, ...] = (30, 120, 600, 1800, 3600, 7200)
BACKOFF_THEN_EVERY = 4 * 3600
RETRY_WINDOW = 24 * 3600
BACKOFF_JITTER = 0.1
#: Retries due within this many seconds go to Celery as a countdown; later ones wait for the sweeper.
CELERY_COUNTDOWN_MAX = 60
#: After a worker died mid-attempt, the next attempt waits this long: every Zoho call the dead worker
#: had in flight has been answered or dropped by then (connect plus read timeout of the client).
DEAD_ATTEMPT_SETTLE = timedelta(seconds=CONNECT_TIMEOUT + READ_TIMEOUT)
#: A job that arrives this much before the order's next attempt is due leaves it alone (clock skew
#: between hosts is allowed for); the job queued for the due time, or the sweeper, runs it.
EARLY_TOLERANCE = timedelta(seconds=5)

REASON_REJECTED = "The order could not be provisioned: our licensing system refused the product or customer details."
REASON_EXHAUSTED = "The order could not be provisioned within 24 hours; IconTech support has been notified."


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


# --- One attempt ----------------------------------------------------------------------------------


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
            order, fulfilment = order_locked(order_pk)
        except (Order.DoesNotExist, Fulfilment.DoesNotExist):
            logger.warning("provisioning: order %s has no fulfilment row", order_pk)
            return None
        if order.status != Order.Status.PROCESSING or fulfilment.status != Fulfilment.Status.PENDING:
            return None
        now = timezone.now()
        if fulfilment.attempt_running:
            # Nobody else holds the lock, yet the last attempt never wrote its outcome: it died.
            dead_attempts_settle(rows=[(fulfilment.pk, order_pk)], now=now)
            return None
        if fulfilment.next_attempt_at is not None and fulfilment.next_attempt_at > now + EARLY_TOLERANCE:
            return None  # a duplicate or early job: the attempt is not due yet
        # No earlier attempt ever reached Zoho: no sales order of ours can exist there yet.
        first_ever = fulfilment.attempts == 0 and not fulfilment.last_error and not fulfilment.sales_order_id
        fulfilment.attempts += 1
        fulfilment.last_attempt_at = now
        fulfilment.next_attempt_at = now + RUNNING_LEASE
        fulfilment.attempt_running = True
        fields = ["attempts", "last_attempt_at", "next_attempt_at", "attempt_running", "updated_at"]
        if not fulfilment.sales_order_numbering:  # named before any Zoho call, once
            naming = sales_order_naming_new(order=order)
            fulfilment.sales_order_numbering, fulfilment.sales_order_name = naming.numbering, naming.name
            fields += ["sales_order_numbering", "sales_order_name"]
        fulfilment.save(update_fields=fields)
    return _Attempt(order=order, fulfilment=fulfilment, first_ever=first_ever)


def dead_attempts_settle(*, rows: list[tuple[int, int]], now) -> None:
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
        order_enqueue_on_commit(order_pk, countdown=DEAD_ATTEMPT_SETTLE.total_seconds())
    logger.warning("provisioning attempts lost with their worker, retry queued", extra={"count": len(rows)})


def _sales_order_id_store(*, order_pk: int, salesorder_id: str) -> None:
    """Written the moment Zoho answers, so a crash right after keeps it: each UPDATE commits on its
    own (autocommit, two round trips instead of BEGIN, two UPDATEs and COMMIT). No transaction is
    needed around the pair: the order's copy commits first, and the next attempt takes the id from
    either (``_sales_order_obtain``), so a crash between the two loses nothing."""
    Order.objects.filter(pk=order_pk).update(zoho_sales_order_id=salesorder_id)
    Fulfilment.objects.filter(order_id=order_pk).update(sales_order_id=salesorder_id)


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
        order_enqueue_on_commit(order.pk, countdown=wait)
    logger.info(
        "provisioning waits for Zoho",
        extra={"order_id": order.order_id, "wait_seconds": round(wait), "error": describe},
    )


def _attempt_failed(*, order_pk: int, error: ZohoError | Exception) -> None:
    """A transient failure: schedule the next attempt, or fail the order once retries run out."""
    describe = error.describe() if isinstance(error, ZohoError) else f"{type(error).__name__}: unexpected error"
    with transaction.atomic():
        order, fulfilment = order_locked(order_pk)
        attempt_end(fulfilment)
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
                order_enqueue_on_commit(order_pk, countdown=wait)
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
    """The order's Zoho sales order: by stored id, else found or created under the order's naming
    (``orders/sales_order_naming.py``), never another partner's, never two."""
    order, fulfilment = attempt.order, attempt.fulfilment
    known_id = order.zoho_sales_order_id or fulfilment.sales_order_id
    if known_id:
        return client.sales_order_get(salesorder_id=known_id)
    annotations = provisioner.sales_order_annotations(order=order)
    if annotations.activation_reference and not fulfilment.activation_reference:
        # Stored before the create: a later attempt reads it, whatever the key or settings by then.
        Fulfilment.objects.filter(pk=fulfilment.pk).update(activation_reference=annotations.activation_reference)
        fulfilment.activation_reference = annotations.activation_reference
    legacy = None
    if fulfilment.sales_order_numbering == Fulfilment.Numbering.LEGACY:
        legacy = legacy_sales_order_find(order=order, client=client, annotations=annotations)
    naming = sales_order_naming_fix(fulfilment=fulfilment, order=order)  # a legacy one: looked up once, named anew
    if legacy is not None:
        _sales_order_id_store(order_pk=order.pk, salesorder_id=legacy.salesorder_id)
        return legacy
    if naming.numbering == Fulfilment.Numbering.AUTO:
        contact_id = zoho_contact_id(order=order, client=client)
        if not attempt.first_ever:
            # An earlier attempt may have created it and died, or timed out on the create.
            found = client.sales_order_find_by_reference(reference=naming.name, customer_id=contact_id)
            if found is not None:
                _sales_order_id_store(order_pk=order.pk, salesorder_id=found.salesorder_id)
                return found
        return _sales_order_create(
            order=order, client=client, annotations=annotations, number="", reference=naming.name
        )
    try:
        return _sales_order_create(
            order=order, client=client, annotations=annotations, number=naming.name, reference=order.order_id
        )
    except ZohoPermanentError as refused:
        if isinstance(refused, ZohoCustomerUnknownError):
            raise
        # Zoho refuses a number it already has: an earlier attempt made this sales order (its answer
        # lost, or its worker killed). Adopted only when the number is exactly ours.
        found = client.sales_order_find_by_number(number=naming.name)
        if found is None:
            raise
        logger.info("provisioning: the sales order of an earlier attempt adopted by its number")
        _sales_order_id_store(order_pk=order.pk, salesorder_id=found.salesorder_id)
        return found


def _sales_order_create(
    *, order: Order, client: ZohoClient, annotations: SalesOrderAnnotations, number: str, reference: str
) -> SalesOrder:
    """``POST /salesorders`` on the order's contact, with the activation reference already in it.

    A cached contact Zoho no longer knows (merged or deleted by staff, a sandbox restarted) is
    forgotten and found or created again, once, at once: no sales order was made by the refused
    create, so posting again cannot make two.
    """
    notes = "\n\n".join(part for part in (annotations.notes, zoho_customer_notes(order=order)) if part)
    fields = {
        "number": number,
        "reference": reference,
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
    with provisioning_lock(order_pk) as held:
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
