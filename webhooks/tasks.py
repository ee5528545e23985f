"""Celery tasks of webhook delivery. Each takes primitive ids and calls a service of the webhooks app
(``delivery.py``, ``dispatch.py``, ``retention.py``).

``webhooks.deliver_webhook`` runs on the ``webhooks`` queue (CELERY_TASK_ROUTES), so a slow or dead
partner endpoint never holds up provisioning. ``webhooks.deliver_due_webhooks`` (every minute) is the
safety net that makes delivery survive a flushed broker or a killed worker.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from celery import shared_task

from partners.models import Partner
from webhooks.retention import webhook_logs_purge


@shared_task(name="webhooks.deliver_webhook", acks_late=True, ignore_result=True)
def deliver_webhook(log_pk: int | None = None, lease: str | None = None, log_pks: list[int] | None = None) -> str:
    """One delivery attempt of one event (``log_pk``), or the attempts of a batch the dispatcher
    claimed (``log_pks``, under ``lease``) and then of the partner's next batches while its endpoint
    answers. Messages of one event with a lease (queued before batches) still run.

    Safe to run twice and to kill at any line: attempts are made only by whoever claims the rows in
    the database (``lease`` is the claim the dispatcher already made for this message); a killed
    run's claims expire and the events are sent again under the same event ids.
    """
    from webhooks.delivery import batch_deliver, event_deliver  # noqa: PLC0415 (delivery → dispatch imports these tasks)

    claimed = datetime.fromisoformat(lease) if lease else None
    if log_pks:
        if claimed is None:
            return "SKIPPED"  # a batch is always claimed; nothing to do without its lease
        outcomes = Counter(batch_deliver(log_pks=log_pks, lease=claimed).values())
        return ", ".join(f"{outcome} {count}" for outcome, count in sorted(outcomes.items())) or "SKIPPED"
    if log_pk is None:
        return "SKIPPED"
    return event_deliver(log_pk=log_pk, lease=claimed).value


@shared_task(name="webhooks.deliver_due_webhooks", ignore_result=True)
def deliver_due_webhooks(partner_pk: int | None = None) -> int:
    """Claim a batch of due events (``FOR UPDATE SKIP LOCKED``, leased) of every partner, or of one,
    and queue one delivery for each batch.

    Safe to run twice at once: two runs never claim the same row.
    """
    from webhooks.dispatch import events_dispatch_due  # noqa: PLC0415 (dispatch imports these tasks at the top)

    if partner_pk is None:
        return events_dispatch_due()
    partner = Partner.objects.filter(pk=partner_pk).first()
    return events_dispatch_due(partner=partner) if partner is not None else 0


@shared_task(name="webhooks.purge_webhook_logs", ignore_result=True)
def purge_webhook_logs() -> int:
    """Nightly retention: delete old SENT and FAILED events in batches. Safe to run twice at once
    (``SKIP LOCKED`` batches) and to kill (each batch commits on its own)."""
    return webhook_logs_purge()
