"""``manage.py purge_idempotency_records``: the 04:00 job, by hand."""

from __future__ import annotations

from t2mobile_portal.management.task_command import TaskCommand


class Command(TaskCommand):
    help = "Delete idempotency records past their expiry."
    task_name = "orders.purge_idempotency_records"

    def summary(self, name, result, *, as_of):
        return f"idempotency records purged: {result['deleted']}"
