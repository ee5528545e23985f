"""Product and ProductPlan (from orders) and CatalogueSync (from integrations) move here: same tables, same rows."""

from django.db import migrations, models
import django.db.models.deletion

from core.model_moves import content_types_move


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_fulfilment_attempt_running"),
        ("integrations", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CatalogueSync",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("started_at", models.DateTimeField()),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[("RUNNING", "Running"), ("DONE", "Done"), ("FAILED", "Failed")],
                                default="RUNNING",
                                max_length=10,
                            ),
                        ),
                        ("items_seen", models.PositiveIntegerField(default=0)),
                        ("created", models.PositiveIntegerField(default=0)),
                        ("updated", models.PositiveIntegerField(default=0)),
                        ("unpublished", models.PositiveIntegerField(default=0)),
                        ("error", models.TextField(blank=True)),
                    ],
                    options={
                        "db_table": "t2mobile_catalogue_syncs",
                        "ordering": ["-started_at"],
                        "get_latest_by": "started_at",
                    },
                ),
                migrations.CreateModel(
                    name="Product",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("item_id", models.CharField(max_length=64, unique=True)),
                        ("name", models.CharField(max_length=255)),
                        ("sku", models.CharField(blank=True, max_length=100)),
                        ("description", models.TextField(blank=True)),
                        ("rate", models.DecimalField(decimal_places=2, default=0, max_digits=12)),
                        ("unit", models.CharField(blank=True, max_length=50)),
                        (
                            "zoho_status",
                            models.CharField(
                                choices=[("active", "Active"), ("inactive", "Inactive")],
                                default="active",
                                max_length=16,
                            ),
                        ),
                        ("is_published", models.BooleanField(default=False)),
                        (
                            "published_set_by_staff",
                            models.BooleanField(
                                default=False, help_text="staff chose the published flag; a sync never overrides it"
                            ),
                        ),
                        ("provisioner", models.CharField(default="zoho_sales_order", max_length=50)),
                        ("last_synced_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "t2mobile_products",
                        "indexes": [models.Index(fields=["is_published", "zoho_status"], name="product_published_idx")],
                    },
                ),
                migrations.CreateModel(
                    name="ProductPlan",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "tenure",
                            models.CharField(
                                choices=[
                                    ("1_MONTH", "1 month"),
                                    ("3_MONTHS", "3 months"),
                                    ("6_MONTHS", "6 months"),
                                    ("12_MONTHS", "12 months"),
                                    ("24_MONTHS", "24 months"),
                                    ("36_MONTHS", "36 months"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("price", models.DecimalField(decimal_places=2, max_digits=12)),
                        ("is_active", models.BooleanField(default=True)),
                        ("set_by_staff", models.BooleanField(default=False)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "product",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="plans",
                                to="catalogue.product",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "t2mobile_product_plans",
                        "constraints": [
                            models.UniqueConstraint(fields=("product", "tenure"), name="product_plan_unique_tenure"),
                            models.CheckConstraint(
                                condition=models.Q(("price__gte", 0)), name="product_plan_price_not_negative"
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        content_types_move(
            ("orders", "catalogue", "product"),
            ("orders", "catalogue", "productplan"),
            ("integrations", "catalogue", "cataloguesync"),
        ),
    ]
