"""``manage.py create_api_key --partner ICONTECH001 [--name NAME]``: print a new API key once."""

from django.core.management.base import BaseCommand, CommandError

from partners.models import Partner
from partners.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a partner and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--partner", required=True, help="partner_id, e.g. ICONTECH001")
        parser.add_argument("--name", default="", help="a label to tell keys apart")

    def handle(self, *args, partner: str, name: str, **options):
        try:
            partner_obj = Partner.objects.get(partner_id=partner)
        except Partner.DoesNotExist:
            raise CommandError(f"No partner {partner!r}; run migrate with PARTNER_ID set first.") from None
        api_key, plain = api_key_create(partner=partner_obj, name=name)
        self.stdout.write(plain)
        self.stderr.write(f"Created key {api_key.prefix}… for {partner_obj.partner_id}; it is not shown again.")
