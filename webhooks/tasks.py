"""Celery tasks of webhook delivery. Each takes primitive ids and calls a service of the webhooks app
(``delivery.py``, ``dispatch.py``, ``retention.py``).

``webhooks.deliver_webhook`` runs on the ``webhooks`` queue (CELERY_TASK_ROUTES), so a slow or dead
partner endpoint never holds up provisioning. ``webhooks.deliver_due_webhooks`` (every minute) is the
safety net that makes delivery survive a flushed broker or a killed worker.
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from partners.models import Partner
from webhooks.retention import webhook_logs_purge


@shared_task(name="webhooks.deliver_webhook", acks_late=True, ignore_result=True)
def deliver_webhook(log_pk: int, lease: str | None = None) -> str:
    """One delivery attempt of one event.

    Safe to run twice and to kill at any line: the attempt is made only by whoever claims the row
    in the database (``lease`` is the claim the dispatcher already made for this message); a killed
    run's claim expires and the event is sent again under the same event id.
    """
    from webhooks.delivery import event_deliver  # inside: delivery → dispatch imports these tasks at the top

    return event_deliver(log_pk=log_pk, lease=datetime.fromisoformat(lease) if lease else None).value


@shared_task(name="webhooks.deliver_due_webhooks", ignore_result=True)
def deliver_due_webhooks(partner_pk: int | None = None) -> int:
    """Claim due events (``FOR UPDATE SKIP LOCKED``, leased) of every partner, or of one, and queue
    a delivery for each.

    Safe to run twice at once: two runs never claim the same row.
    """
    from webhooks.dispatch import events_dispatch_due  # inside: dispatch imports these tasks at the top

    if partner_pk is None:
        return events_dispatch_due()
    partner = Partner.objects.filter(pk=partner_pk).first()
    return events_dispatch_due(partner=partner) if partner is not None else 0


@shared_task(name="webhooks.purge_webhook_logs", ignore_result=True)
def purge_webhook_logs() -> int:
    """Nightly retention: delete old SENT and FAILED events in batches. Safe to run twice at once
    (``SKIP LOCKED`` batches) and to kill (each batch commits on its own)."""
    return webhook_logs_purge()
