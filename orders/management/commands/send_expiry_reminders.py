"""``manage.py send_expiry_reminders [--as-of ISO]``: the 02:00 job, by hand (e.g. after an outage)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orders.subscriptions import expiry_reminders_send
from t2mobile_portal.times import as_of_parse


class Command(BaseCommand):
    help = "Send EXPIRY_REMINDER events for ACTIVE subscriptions expiring within REMINDER_DAYS."

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of", help="run as if it were this time (ISO 8601; no offset means TIME_ZONE); default now"
        )

    def handle(self, *args, **options):
        try:
            as_of = as_of_parse(options["as_of"])
        except ValueError as exc:
            raise CommandError(f"--as-of: {exc}") from None
        run = expiry_reminders_send(as_of=as_of)
        self.stdout.write(
            f"expiry reminders as of {as_of.isoformat()}: {run.sent} sent, {run.already_sent} already sent, "
            f"{run.scanned} subscriptions due"
        )
