"""Celery tasks of the order flow. Tasks take primitive ids and call a service.

``orders.provision_order`` provisions one order (``orders/provisioning.py``);
``orders.redrive_stalled_orders`` is the every-minute sweeper that queues orders whose job was lost.
When a provisioning job is published, a marker is set in Redis (``before_task_publish``: before the
message exists, so that a worker that receives it at once always clears a marker that is already
there) and cleared when a worker receives the job (``task_received``), so the sweeper does not queue a second job for
an order that is simply waiting in a long queue. A flushed or restarted Redis loses the markers with
the jobs, and a worker killed with jobs it had received loses those jobs after their markers were
cleared: either way the sweeper finds the orders due without a marker and queues them again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from celery.signals import before_task_publish, task_received
from django.core import mail
from django.db import connection
from django.db.backends.base.creation import TEST_DATABASE_PREFIX
from django.utils import timezone

from core.instruments import PROVISIONING_SECONDS
from core.times import as_of_parse
from orders.idempotency import idempotency_records_purge
from orders.provisioning import order_provision
from orders.queueing import queued_marker_clear, queued_marker_set
from orders.subscriptions import expiry_reminders_send, subscriptions_expire
from orders.sweeper import orders_redrive_stalled

logger = logging.getLogger(__name__)


@shared_task(name="orders.provision_order", acks_late=True)
def provision_order(order_pk: int) -> None:
    """Provision one order in Zoho.

    Safe to run twice: a per-order PostgreSQL lock makes a concurrent duplicate exit, and every
    status change checks the current state. Safe to kill at any line: each Zoho id is committed as
    soon as it is known, the sales order is looked up by reference before one is created, and the
    sweeper queues the order again once its attempt lease has run out.
    """
    with PROVISIONING_SECONDS.time():
        order_provision(order_pk=order_pk)


@shared_task(name="orders.redrive_stalled_orders", ignore_result=True)
def redrive_stalled_orders() -> int:
    """Queue PROCESSING orders whose attempt is due and that no job is queued for (every minute).

    Safe to run twice at once: batches are taken with ``SELECT … FOR UPDATE SKIP LOCKED``, and a
    job queued twice is harmless (see ``provision_order``).
    """
    return orders_redrive_stalled()


# --- Scheduled work (t2mobile_portal/schedule.py installs the beat entries) --------------------------------

# How far ahead of the clock a night's run may be dated: a command typed at 01:59 "as of 02:00", or a
# worker whose clock is a little behind the beat's. Anything later would act on the future: expire
# every subscription early, or remind partners days too soon, from one periodic task's kwargs.
AS_OF_FUTURE_TOLERANCE = timedelta(minutes=5)


class FutureAsOfRefused(ValueError):
    """A nightly run asked to act as of a time that has not come yet (outside the test suite)."""


def _test_database_in_use() -> bool:
    """True only on the database Django's test runner created, inside its test environment.

    The name is the test runner's (``TEST["NAME"]``, or ``test_`` + ``NAME``, as ``create_test_db``
    sets it), and ``setup_test_environment`` has run in this process (it creates ``mail.outbox``,
    which nothing else does). Both come from the process's own set-up; nothing a task receives
    (a kwarg, a header) can make them true.
    """
    name = str(connection.settings_dict.get("NAME") or "")
    test_name = (connection.settings_dict.get("TEST") or {}).get("NAME")
    made_by_test_runner = bool(name) and (name == test_name or name.startswith(TEST_DATABASE_PREFIX))
    return made_by_test_runner and hasattr(mail, "outbox")


def scheduled_as_of(value: str | None, *, task_name: str) -> datetime:
    """The moment a nightly run acts as of: now by default, any past time (a missed night re-run),
    never the future beyond ``AS_OF_FUTURE_TOLERANCE`` (the test suite's database excepted, whose
    fixed dates move from the future into the past as the calendar turns)."""
    as_of = as_of_parse(value)
    latest = timezone.now() + AS_OF_FUTURE_TOLERANCE
    if as_of > latest and not _test_database_in_use():
        logger.warning("scheduled run refused: as_of in the future", extra={"task": task_name, "as_of": str(value)})
        raise FutureAsOfRefused(
            f"{task_name}: as_of {as_of.isoformat()} is in the future (latest accepted {latest.isoformat()}); "
            "a run may only be dated now or in the past"
        )
    return as_of


@shared_task(name="orders.send_expiry_reminders")
def send_expiry_reminders(as_of: str | None = None) -> dict:
    """EXPIRY_REMINDER per due subscription and threshold. Safe to run twice at once and to kill at
    any line: SKIP LOCKED batches commit one by one and every event has a unique dedup key. A future
    ``as_of`` is refused before anything is read (``scheduled_as_of``)."""
    run = expiry_reminders_send(as_of=scheduled_as_of(as_of, task_name="orders.send_expiry_reminders"))
    return {"sent": run.sent, "alreadySent": run.already_sent, "scanned": run.scanned}


@shared_task(name="orders.expire_subscriptions")
def expire_subscriptions(as_of: str | None = None) -> dict:
    """ACTIVE past expires_at → EXPIRED with SUBSCRIPTION_EXPIRED. Safe to run twice and to kill at
    any line: the transition is guarded under a row lock and the event has a unique dedup key. A
    future ``as_of`` is refused before anything is read (``scheduled_as_of``)."""
    run = subscriptions_expire(as_of=scheduled_as_of(as_of, task_name="orders.expire_subscriptions"))
    return {"expired": run.expired, "events": run.events}


@shared_task(name="orders.purge_idempotency_records")
def purge_idempotency_records() -> dict:
    """Delete idempotency records past their expiry. Safe to run twice: it deletes expired rows only."""
    return {"deleted": idempotency_records_purge()}


# --- Queued markers for the sweeper ----------------------------------------------------------------


@before_task_publish.connect(sender="orders.provision_order")
def _mark_provisioning_queued(sender=None, body=None, headers=None, **_kwargs):
    # Before, not after, the publish: set after it, the marker could land after an idle worker had
    # already received the job and cleared it, and stay for an hour with no job behind it, hiding
    # the order from the sweeper (seen in tests/faults/test_redis_faults.py). A publish that fails
    # clears it again (``orders.queueing.order_enqueue``).
    try:
        order_pk = int(body[0][0])
    except (TypeError, ValueError, IndexError, KeyError):
        return
    queued_marker_set(order_pk)


@task_received.connect
def _clear_provisioning_queued(request=None, **_kwargs):
    if getattr(request, "name", None) != "orders.provision_order":
        return
    try:
        order_pk = int(request.args[0])
    except (TypeError, ValueError, IndexError):
        return
    queued_marker_clear(order_pk)
