"""The Celery application ``t2mobile_portal``: ``celery -A t2mobile_portal worker|beat``.

Configuration comes from Django settings (``CELERY_*``); tasks are autodiscovered in every app's
``tasks.py`` and carry explicit names (``orders.provision_order``, ``webhooks.deliver_webhook``).
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "t2mobile_portal.settings")

app = Celery("t2mobile_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _bind_task_id(task_id=None, **_kwargs):
    from t2mobile_portal.logging import task_id_var

    task_id_var.set(task_id)


@task_postrun.connect
def _unbind_task_id(**_kwargs):
    from t2mobile_portal.logging import order_id_var, task_id_var

    task_id_var.set(None)
    order_id_var.set(None)
