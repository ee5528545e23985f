"""``manage.py expire_subscriptions [--as-of ISO]``: the 03:00 job, by hand (e.g. after an outage)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orders.subscriptions import subscriptions_expire
from t2mobile_portal.times import as_of_parse


class Command(BaseCommand):
    help = "Move ACTIVE fulfilments past expires_at to EXPIRED, sending SUBSCRIPTION_EXPIRED."

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of", help="run as if it were this time (ISO 8601; no offset means TIME_ZONE); default now"
        )

    def handle(self, *args, **options):
        try:
            as_of = as_of_parse(options["as_of"])
        except ValueError as exc:
            raise CommandError(f"--as-of: {exc}") from None
        run = subscriptions_expire(as_of=as_of)
        self.stdout.write(f"subscriptions expired as of {as_of.isoformat()}: {run.expired} ({run.events} events)")
