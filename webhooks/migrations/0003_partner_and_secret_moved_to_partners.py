"""Partners live in the partners app now; WebhookSecret moves there too. No change to the database."""

from django.db import migrations, models
import django.db.models.deletion

from core.model_moves import content_types_move


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0001_initial"),
        ("webhooks", "0002_endpoint_state_and_purge_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="webhookendpointstate",
                    name="partner",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="webhook_endpoint_state",
                        serialize=False,
                        to="partners.partner",
                    ),
                ),
                migrations.AlterField(
                    model_name="webhooklog",
                    name="partner",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="webhook_logs", to="partners.partner"
                    ),
                ),
                migrations.DeleteModel(
                    name="WebhookSecret",
                ),
            ],
            database_operations=[],
        ),
    ]
