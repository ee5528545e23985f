from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_partner(sender, **kwargs):
    from orders.services import partner_sync_from_settings

    partner_sync_from_settings()


def _install_beat_schedule(sender, using="default", **kwargs):
    from orders.schedule import beat_schedule_install, beat_tables_exist

    if beat_tables_exist(using):
        beat_schedule_install(using=using)


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The partner named by PARTNER_ID and the keys of T2MOBILE_API_KEYS exist after every
        # `migrate` (the Procfile's release step), so a fresh database needs no clicks.
        post_migrate.connect(_sync_partner, sender=self, dispatch_uid="orders.sync_partner")
        # The celery-beat schedule (orders/schedule.py) likewise: created when missing, never
        # overwriting times staff changed in the admin.
        post_migrate.connect(_install_beat_schedule, sender=self, dispatch_uid="orders.install_beat_schedule")
