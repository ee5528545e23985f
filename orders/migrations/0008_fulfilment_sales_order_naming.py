"""Sales orders named by partner (issue 20). Orders in flight when this is deployed may have a sales
order in Zoho made under the old name (``reference_number`` = orderId, Zoho's number): their
fulfilments are marked ``legacy`` so that the next attempt looks that sales order up once
(``orders/sales_order_naming.py``) before naming it the new way. A fulfilment that never reached
Zoho (no attempt, no error) needs no look-up and is named at its first attempt.

Every order in flight gets its activation reference stored now, derived as the code before derived it
(``SECRET_KEY``): from here on it is read from the fulfilment, so setting ``ACTIVATION_REFERENCE_KEY``
changes no reference an order may already carry in Zoho.

Zoho contacts cached for two partners at once (the old lookup by email could hand one partner's
customer another partner's contact) are forgotten for both: their next order finds or makes the
contact named after its own partner.
"""

import base64
import hashlib
import hmac

from django.conf import settings
from django.db import migrations, models
from django.db.models import Count, Q


def _reference_before(partner_id: str, order_id: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{partner_id}:{order_id}".encode(), hashlib.sha256).digest()
    code = base64.b32encode(digest[:10]).decode()
    return "ICT-" + "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def in_flight_references_store(apps, schema_editor):
    Fulfilment = apps.get_model("orders", "Fulfilment")
    pending = Fulfilment.objects.filter(status="PENDING", activation_reference="").select_related(
        "order__partner", "order__renewal_of__subscription"
    )
    for fulfilment in pending.iterator():
        order = fulfilment.order
        renewed = order.renewal_of.subscription if order.renewal_of_id and order.renewal_of.subscription_id else None
        fulfilment.activation_reference = (
            renewed.activation_reference if renewed else _reference_before(order.partner.partner_id, order.order_id)
        )
        fulfilment.save(update_fields=["activation_reference"])


def in_flight_mark_legacy(apps, schema_editor):
    Fulfilment = apps.get_model("orders", "Fulfilment")
    Fulfilment.objects.filter(status="PENDING", sales_order_id="").filter(
        Q(attempts__gt=0) | ~Q(last_error="")
    ).update(sales_order_numbering="legacy")
    ZohoContact = apps.get_model("orders", "ZohoContact")
    shared = (
        ZohoContact.objects.values("contact_id")
        .annotate(partners=Count("partner", distinct=True))
        .filter(partners__gt=1)
        .values("contact_id")
    )
    ZohoContact.objects.filter(contact_id__in=shared).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0007_idempotency_partner_fk_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='fulfilment',
            name='sales_order_name',
            field=models.CharField(blank=True, max_length=80),
        ),
        migrations.AddField(
            model_name='fulfilment',
            name='sales_order_numbering',
            field=models.CharField(blank=True, choices=[('ours', 'our number (<prefix>-<orderId>)'), ('auto', "Zoho's number, our reference (<prefix>-<orderId>)"), ('legacy', 'made before prefixes (reference = orderId): looked up once')], max_length=8),
        ),
        migrations.RunPython(in_flight_mark_legacy, migrations.RunPython.noop),
        migrations.RunPython(in_flight_references_store, migrations.RunPython.noop),
    ]
