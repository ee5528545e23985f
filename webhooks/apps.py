from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webhooks.checks import webhook_checks_register  # noqa: PLC0415 (app loading: the check imports the models)

        webhook_checks_register()
