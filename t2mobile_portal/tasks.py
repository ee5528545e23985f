"""Celery tasks of the composition root: work that reads every app (autodiscovered: ``t2mobile_portal``
is an installed app, so ``app.autodiscover_tasks()`` imports this module like any app's ``tasks.py``).
"""

from __future__ import annotations

from celery import shared_task

from t2mobile_portal.alerts import staff_alerts_send


@shared_task(name="alerts.send_staff_alerts", ignore_result=True)
def send_staff_alerts() -> dict:
    """Mail ADMINS each active staff alert at most once an hour (every minute, on the default queue).

    Safe to run twice at once and to kill at any line: it only reads, and a mail goes out only after
    this run has added the alert's key to the shared cache (``cache.add`` is atomic), so a second run,
    a second beat or a restart within the hour finds the key and sends nothing.
    """
    return staff_alerts_send()
