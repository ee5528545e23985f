"""A partner's ``rate_limit`` is validated with the throttle's own parser (``Rate.parse``): forms
refuse what the throttle could not read. No change to the table."""

from django.db import migrations, models

import partners.models


class Migration(migrations.Migration):
    dependencies = [("partners", "0002_partner_prefix")]

    operations = [
        migrations.AlterField(
            model_name="partner",
            name="rate_limit",
            field=models.CharField(
                blank=True,
                help_text=(
                    "Requests per period, e.g. 100/m, 5000/h or 90/6s (s, m, h, d); "
                    "empty means the T2MOBILE_RATE_LIMIT setting"
                ),
                max_length=20,
                validators=[partners.models.rate_limit_validator],
            ),
        ),
    ]
