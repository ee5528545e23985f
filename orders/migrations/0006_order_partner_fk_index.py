"""Drop the single-column index of ``Order.partner``: the unique (partner, order_id) and
(partner, idempotency_key) indexes and (partner, customer_id) all lead with the partner, so every
query by partner (the order list, the admin's filter, the PROTECT check when a partner is deleted)
still has an index, and each order insert maintains one index fewer. On a database without
statistics (fresh, or just restored) PostgreSQL took the narrow partner index for a lookup by
(partner, order_id) and filtered every order of the partner (issue 14).

Only the index goes: Django's own AlterField would also drop and re-add the foreign key, and
re-adding it checks every order under a lock that stops intake for as long as that takes.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "t2mobile_orders_partner_id_e97cf1c5"  # Django's name for it, the same on PostgreSQL and SQLite


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_subscriptions_from_renewal_chains"),
        ("partners", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "t2mobile_orders" ("partner_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="order",
                    name="partner",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="orders",
                        to="partners.partner",
                    ),
                ),
            ],
        ),
    ]
