"""``manage.py sync_zoho_catalogue``: refresh the local catalogue from Zoho now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalogue.services import CatalogueSyncBusy, catalogue_sync
from integrations.zoho.errors import ZohoError


class Command(BaseCommand):
    help = "Page through Zoho's items and upsert the local products and plans."

    def handle(self, *args, **options):
        try:
            run = catalogue_sync()
        except CatalogueSyncBusy as exc:
            raise CommandError(str(exc)) from None
        except ZohoError as exc:
            raise CommandError(f"Zoho sync failed: {exc.describe()}") from None
        self.stdout.write(
            f"Catalogue synced: {run.items_seen} items, {run.created} new, {run.updated} updated, "
            f"{run.unpublished} unpublished."
        )
