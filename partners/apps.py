from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_partner(sender, **kwargs):
    from partners.services import partner_sync_from_settings  # noqa: PLC0415 (app loading: models are not ready at import)

    partner_sync_from_settings()


class PartnersConfig(AppConfig):
    name = "partners"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The partner named by PARTNER_ID and the keys of T2MOBILE_API_KEYS exist after every
        # `migrate` (the Procfile's release step), so a fresh database needs no clicks.
        post_migrate.connect(_sync_partner, sender=self, dispatch_uid="partners.sync_partner")
