"""The Celery application ``t2mobile_portal``: ``celery -A t2mobile_portal worker|beat``.

Configuration comes from Django settings (``CELERY_*``); tasks are autodiscovered in every app's
``tasks.py`` and carry explicit names (``orders.provision_order``, ``webhooks.deliver_webhook``).
"""

from __future__ import annotations

import os

import redis
from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_shutdown
from kombu.transport import redis as kombu_redis
from prometheus_client import multiprocess

from core.logging import order_id_var, task_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "t2mobile_portal.settings")


def _broker_loss_survivable() -> None:
    """Keep a worker alive when Redis goes away while it holds unacknowledged messages.

    On a broker loss, kombu 5.7's Redis channel restores its unacked messages while closing, after
    its connection has already been dropped, and reads the broker URL from that closed connection:
    ``AttributeError: 'NoneType' object has no attribute 'hostname'`` escapes kombu's error handling,
    and celery stops the worker ("Unrecoverable error"; the kombu#582 family). Raising the
    connection error this really is lets kombu's close path ignore it and the worker reconnect; the
    messages it could not restore come back after the visibility timeout, and the orders behind
    them are queued again by the sweeper long before that (tests/faults/test_redis_faults.py).
    """
    original = kombu_redis.Channel._connparams
    if getattr(original, "_t2m_guarded", False):
        return

    def _connparams(self, asynchronous=False):
        if getattr(self.connection, "client", None) is None:
            raise redis.exceptions.ConnectionError("the broker connection is already closed")
        return original(self, asynchronous=asynchronous)

    _connparams._t2m_guarded = True
    kombu_redis.Channel._connparams = _connparams


_broker_loss_survivable()

app = Celery("t2mobile_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _bind_task_id(task_id=None, **_kwargs):
    task_id_var.set(task_id)


@task_postrun.connect
def _unbind_task_id(**_kwargs):
    task_id_var.set(None)
    order_id_var.set(None)


@worker_process_shutdown.connect
def _forget_live_gauges(pid=None, **_kwargs):
    """A prefork pool process is exiting: as gunicorn's ``child_exit`` does for a web worker
    (gunicorn.conf.py). Its counters' files stay in PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())
