"""``manage.py install_beat_schedule``: create the missing celery-beat entries (``migrate`` does it too)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from t2mobile_portal.schedule import SCHEDULE, beat_schedule_install


class Command(BaseCommand):
    help = "Create the periodic tasks of the schedule that are missing; existing ones are left as staff set them."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        created = beat_schedule_install(using=options["database"])
        for name in created:
            self.stdout.write(f"created: {name}")
        self.stdout.write(f"{len(created)} created, {len(SCHEDULE) - len(created)} already present")
