"""Each partner gets a short prefix that names its records in Zoho (issue 20: two partners' equal
orderIds and customerIds must never meet there). The partner of the environment (``PARTNER_ID``)
takes ``PARTNER_PREFIX`` (T2M by default); any other existing partner takes the capitals and digits
of its ``partner_id``, made unique with a number."""

import re

from django.conf import settings
from django.db import migrations, models

import partners.models


def _candidate(partner_id: str) -> str:
    letters = re.sub(r"[^A-Z0-9]", "", partner_id.upper()).lstrip("0123456789")
    return (letters or "P")[:6].ljust(2, "X")


def prefixes_fill(apps, schema_editor):
    Partner = apps.get_model("partners", "Partner")
    taken: set[str] = set()
    for partner in Partner.objects.order_by("pk"):
        if partner.partner_id == settings.PARTNER_ID and settings.PARTNER_PREFIX not in taken:
            prefix = settings.PARTNER_PREFIX
        else:
            base = prefix = _candidate(partner.partner_id)
            number = 2
            while prefix in taken or prefix == settings.PARTNER_PREFIX:
                prefix = f"{base}{number}"[:8]
                number += 1
        taken.add(prefix)
        partner.prefix = prefix
        partner.save(update_fields=["prefix"])


class Migration(migrations.Migration):
    dependencies = [("partners", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="partner",
            name="prefix",
            field=models.CharField(max_length=8, null=True),
        ),
        migrations.RunPython(prefixes_fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="partner",
            name="prefix",
            field=models.CharField(
                help_text="Names this partner's Zoho sales orders (PREFIX-orderId) and contacts; set once, never changed.",
                max_length=8,
                unique=True,
                validators=[partners.models.prefix_validator],
            ),
        ),
    ]
