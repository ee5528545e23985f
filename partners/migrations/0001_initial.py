"""Partner, ApiKey and WebhookSecret move here from orders and webhooks: same tables, same rows (state only)."""

from django.db import migrations, models
import django.db.models.deletion

from core.model_moves import content_types_move


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_fulfilment_attempt_running"),
        ("webhooks", "0002_endpoint_state_and_purge_index"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Partner",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("partner_id", models.CharField(max_length=64, unique=True)),
                        ("name", models.CharField(max_length=200)),
                        ("webhook_url", models.URLField(blank=True, max_length=500)),
                        (
                            "webhook_scheme",
                            models.CharField(
                                choices=[
                                    ("standard-webhooks-v1", "Standard Webhooks v1"),
                                    ("hmac-sha256-hex", "HMAC-SHA256 hex (X-Signature)"),
                                ],
                                default="standard-webhooks-v1",
                                max_length=32,
                            ),
                        ),
                        (
                            "rate_limit",
                            models.CharField(
                                blank=True,
                                help_text="e.g. 100/m; empty means the T2MOBILE_RATE_LIMIT setting",
                                max_length=20,
                            ),
                        ),
                        ("deliveries_paused", models.BooleanField(default=False)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "t2mobile_partners",
                    },
                ),
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(blank=True, max_length=100)),
                        (
                            "prefix",
                            models.CharField(
                                db_index=True, help_text="first characters, to tell keys apart", max_length=16
                            ),
                        ),
                        ("hash", models.CharField(max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "partner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_keys",
                                to="partners.partner",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "API key",
                        "db_table": "t2mobile_api_keys",
                    },
                ),
                migrations.CreateModel(
                    name="WebhookSecret",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("secret", models.CharField(help_text="whsec_<base64> for Standard Webhooks", max_length=200)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "expires_at",
                            models.DateTimeField(blank=True, help_text="end of the rotation grace period", null=True),
                        ),
                        (
                            "partner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="webhook_secrets",
                                to="partners.partner",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "t2mobile_webhook_secrets",
                    },
                ),
            ],
            database_operations=[],
        ),
        content_types_move(
            ("orders", "partners", "partner"),
            ("orders", "partners", "apikey"),
            ("webhooks", "partners", "webhooksecret"),
        ),
    ]
