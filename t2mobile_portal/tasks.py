"""Celery tasks of the composition root: work that reads every app (autodiscovered: ``t2mobile_portal``
is an installed app, so ``app.autodiscover_tasks()`` imports this module like any app's ``tasks.py``).
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from partners.services import webhook_secrets_purge
from t2mobile_portal.alerts import staff_alerts_send


@shared_task(name="alerts.send_staff_alerts", ignore_result=True)
def send_staff_alerts() -> dict:
    """Mail ADMINS each active staff alert at most once an hour (every minute, on the default queue).

    Safe to run twice at once and to kill at any line: it only reads, and a mail goes out only after
    this run has added the alert's key to the shared cache (``cache.add`` is atomic), so a second run,
    a second beat or a restart within the hour finds the key and sends nothing.
    """
    return staff_alerts_send()


@shared_task(name="partners.purge_webhook_secrets", ignore_result=True)
def purge_webhook_secrets() -> dict:
    """Delete webhook signing secrets a day past their rotation grace, never a partner's newest one
    (nightly, beside the other purges). Safe to run twice and to kill at any line: it is one DELETE
    of rows that no longer sign anything (``partners.services.webhook_secrets_purge``)."""
    return {"deleted": webhook_secrets_purge(now=timezone.now())}
