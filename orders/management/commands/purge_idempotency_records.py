"""``manage.py purge_idempotency_records``: the 04:00 job, by hand."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from orders.idempotency import idempotency_records_purge


class Command(BaseCommand):
    help = "Delete idempotency records past their expiry."

    def handle(self, *args, **options):
        self.stdout.write(f"idempotency records purged: {idempotency_records_purge()}")
