"""``manage.py run_task <name> [--as-of ISO]``: run a scheduled Celery task now, in this process.

The task is looked up by name in the Celery app's registry, so every app's tasks are reachable
(``orders.send_expiry_reminders``, ``webhooks.deliver_due_webhooks``, …). It runs synchronously
through Celery's machinery (``Task.apply``), exactly as a worker would run it
(``t2mobile_portal/management/task_command.py``, which the nightly jobs' own commands share).
"""

from __future__ import annotations

from t2mobile_portal.management.task_command import TaskCommand


class Command(TaskCommand):
    help = "Run a scheduled task now, synchronously (e.g. orders.send_expiry_reminders)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Celery task name, e.g. orders.expire_subscriptions")
        parser.add_argument("--as-of", help="for tasks that take it: run as if it were this time (ISO 8601)")
