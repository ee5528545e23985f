"""``manage.py resend_webhook <eventId>`` or ``--failed-since ISO [--partner ID]``: send events again
under their own event ids (a new attempt each, whatever their status)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from partners.models import Partner
from webhooks.controls import event_resend, events_resend_failed
from webhooks.models import WebhookLog


class Command(BaseCommand):
    help = "Resend one webhook event by id, or every FAILED event created since a time."

    def add_arguments(self, parser):
        parser.add_argument("event_id", nargs="?", help="evt_…")
        parser.add_argument("--failed-since", help="ISO 8601 time, e.g. 2026-11-23T00:00:00Z")
        parser.add_argument("--partner", help="partner_id, to limit --failed-since to one partner")

    def handle(self, *args, event_id=None, failed_since=None, partner=None, **options):
        if bool(event_id) == bool(failed_since):
            raise CommandError("Give either an event id or --failed-since ISO.")
        if event_id:
            try:
                log = WebhookLog.objects.get(event_id=event_id)
            except WebhookLog.DoesNotExist:
                raise CommandError(f"No webhook event {event_id!r}.") from None
            event_resend(log=log)
            self.stdout.write(f"Queued {log.event_type} {log.event_id} for delivery.")
            return
        since = parse_datetime(failed_since)
        if since is None:
            raise CommandError(f"--failed-since {failed_since!r} is not an ISO 8601 time.")
        if is_naive(since):
            since = make_aware(since)
        partner_obj = None
        if partner:
            partner_obj = Partner.objects.filter(partner_id=partner).first()
            if partner_obj is None:
                raise CommandError(f"No partner {partner!r}.")
        count = events_resend_failed(since=since, partner=partner_obj)
        self.stdout.write(f"Queued {count} failed event(s) for delivery.")
