"""CatalogueSync moves to catalogue, ZohoContact to orders: the tables stay (state only)."""

from django.db import migrations, models
import django.db.models.deletion

from core.model_moves import content_types_move


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_initial"),
        ("catalogue", "0001_initial"),
        ("partners", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name="CatalogueSync",
                ),
                migrations.DeleteModel(
                    name="ZohoContact",
                ),
            ],
            database_operations=[],
        ),
    ]
