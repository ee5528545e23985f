"""Partner and ApiKey move to partners, Product and ProductPlan to catalogue; ZohoContact comes from
integrations. No change to the database: same tables, same rows."""

import django.db.models.deletion
from django.db import migrations, models

from core.model_moves import content_types_move


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_tables_moved_to_catalogue_and_orders"),
        ("orders", "0002_fulfilment_attempt_running"),
        ("partners", "0001_initial"),
        ("webhooks", "0003_partner_and_secret_moved_to_partners"),
        ("catalogue", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="order",
                    name="partner",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="orders", to="partners.partner"
                    ),
                ),
                migrations.AlterField(
                    model_name="idempotencyrecord",
                    name="partner",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="partners.partner"
                    ),
                ),
                migrations.RemoveField(
                    model_name="productplan",
                    name="product",
                ),
                migrations.CreateModel(
                    name="ZohoContact",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("customer_id", models.CharField(max_length=64)),
                        ("contact_id", models.CharField(max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "partner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="partners.partner"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "t2mobile_zoho_contacts",
                    },
                ),
                migrations.DeleteModel(
                    name="ApiKey",
                ),
                migrations.DeleteModel(
                    name="Partner",
                ),
                migrations.DeleteModel(
                    name="Product",
                ),
                migrations.DeleteModel(
                    name="ProductPlan",
                ),
                migrations.AddConstraint(
                    model_name="zohocontact",
                    constraint=models.UniqueConstraint(
                        fields=("partner", "customer_id"), name="zoho_contact_unique_customer"
                    ),
                ),
            ],
            database_operations=[],
        ),
        content_types_move(("integrations", "orders", "zohocontact")),
    ]
