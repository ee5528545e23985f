from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    """The Zoho client package (``integrations.zoho``) and the sandbox command. It owns no table: its
    migrations are the history of two tables that moved to ``catalogue`` and ``orders``."""

    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"
