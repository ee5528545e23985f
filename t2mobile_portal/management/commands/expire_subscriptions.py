"""``manage.py expire_subscriptions [--as-of ISO]``: the 03:00 job, by hand (e.g. after an outage)."""

from __future__ import annotations

from t2mobile_portal.management.task_command import TaskCommand


class Command(TaskCommand):
    help = "ACTIVE subscriptions past expires_at (and their last fulfilment) become EXPIRED, with SUBSCRIPTION_EXPIRED."
    task_name = "orders.expire_subscriptions"

    def summary(self, name, result, *, as_of):
        return f"subscriptions expired as of {as_of}: {result['expired']} ({result['events']} events)"
