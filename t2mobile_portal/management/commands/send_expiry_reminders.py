"""``manage.py send_expiry_reminders [--as-of ISO]``: the 02:00 job, by hand (e.g. after an outage)."""

from __future__ import annotations

from t2mobile_portal.management.task_command import TaskCommand


class Command(TaskCommand):
    help = "Send EXPIRY_REMINDER events for ACTIVE subscriptions expiring within REMINDER_DAYS."
    task_name = "orders.send_expiry_reminders"

    def summary(self, name, result, *, as_of):
        return (
            f"expiry reminders as of {as_of}: {result['sent']} sent, {result['alreadySent']} already sent, "
            f"{result['scanned']} subscriptions due"
        )
