"""Publishing provisioning jobs, and the marker that tells the sweeper a job is queued.

``order_enqueue`` publishes ``orders.provision_order``; a failed publish never loses the order: it is
made due for the sweeper at once. The queued marker (in the cache) is set just before a job is
published (cleared again if the publish fails) and cleared when a worker receives it
(``orders.tasks``), so the sweeper re-queues only orders whose job is gone.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from core.redis_roles import limits
from orders.models import Fulfilment

logger = logging.getLogger(__name__)

#: The sweeper leaves a due order alone this long after it became due: the time between an intake's
#: commit and the publish of its job (a queued job is known by its marker, see ``orders.tasks``).
SWEEP_GRACE = timedelta(seconds=30)
#: Set in Redis when a provisioning job is published, cleared when it starts (see ``orders.tasks``).
QUEUED_MARKER_KEY = "provisioning:queued:{order_pk}"
#: A marker outlives a job lost between broker and worker (a broker outage just as a worker took
#: the job, before it told anyone); the sweeper also ignores every marker while no provisioning job
#: waits in the queue (``provisioning_jobs_waiting``), so that bounds only a loss during a backlog.
QUEUED_MARKER_SECONDS = 900


def order_enqueue(order_pk: int, *, countdown: float | None = None) -> bool:
    """Publish ``orders.provision_order``. When the broker cannot take it, the order is made due
    for the sweeper at once (its grace is for jobs that were published), so that the first sweep
    after the broker is back queues it."""
    from orders.tasks import provision_order  # noqa: PLC0415 (the tasks module imports this one: Celery's side)

    try:
        provision_order.apply_async(args=[order_pk], countdown=countdown)
    except Exception as exc:  # kombu raises many types
        logger.warning("provisioning not queued, the sweeper will retry: %s", type(exc).__name__)
        queued_marker_clear(order_pk)  # set just before the publish (orders.tasks); no job is behind it
        Fulfilment.objects.filter(order_id=order_pk, attempt_running=False, next_attempt_at__isnull=False).update(
            next_attempt_at=F("next_attempt_at") - SWEEP_GRACE
        )
        return False
    return True


def provisioning_jobs_waiting() -> int | None:
    """How many provisioning jobs wait in the broker's queue (not those a worker has taken); None
    when the broker cannot say."""
    from orders.tasks import provision_order  # noqa: PLC0415 (the tasks module imports this one: Celery's side)

    queue = settings.CELERY_TASK_ROUTES["orders.provision_order"]["queue"]
    try:
        with provision_order.app.connection_for_read() as connection:
            return connection.default_channel.queue_declare(queue=queue, passive=False).message_count
    except Exception as exc:  # kombu raises many types; the markers are then believed
        logger.warning("provisioning queue length unknown: %s", type(exc).__name__)
        return None


def order_enqueue_on_commit(order_pk: int, *, countdown: float | None = None) -> None:
    transaction.on_commit(lambda: order_enqueue(order_pk, countdown=countdown))


def queued_marker_set(order_pk: int) -> None:
    try:
        limits.set(QUEUED_MARKER_KEY.format(order_pk=order_pk), 1, timeout=QUEUED_MARKER_SECONDS)
    except Exception:  # Redis down: the sweeper simply queues again
        logger.debug("queued marker not set")


def queued_marker_clear(order_pk: int) -> None:
    try:
        limits.delete(QUEUED_MARKER_KEY.format(order_pk=order_pk))
    except Exception:
        logger.debug("queued marker not cleared")
