"""The composition root as apps: the back-office admin, and the portal app (beat schedule, commands).

``INSTALLED_APPS`` lists ``t2mobile_portal.apps.BackOfficeAdminConfig`` in place of
``django.contrib.admin``, so ``admin.site`` (and ``admin.site.urls`` in ``urls.py``) is
``BackOfficeSite``: the overview on the index page and a rate-limited login. Its ``ready`` also
registers the system checks that refuse weak secrets (``t2mobile_portal/checks.py``).
"""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate


def _install_beat_schedule(sender, using="default", **kwargs):
    from t2mobile_portal.schedule import beat_schedule_install, beat_tables_exist  # noqa: PLC0415 (app loading: models)

    if beat_tables_exist(using):
        beat_schedule_install(using=using)


class PortalConfig(AppConfig):
    """``t2mobile_portal`` as an app of its own (no models): the commands that span every app
    (``run_task``, ``install_beat_schedule``) and the beat schedule made after every ``migrate``."""

    name = "t2mobile_portal"

    def ready(self) -> None:
        # The celery-beat schedule (t2mobile_portal/schedule.py): created when missing, never
        # overwriting times staff changed in the admin.
        # This app has no models, so Django sends it no post_migrate: listen to the beat app's.
        beat = self.apps.get_app_config("django_celery_beat")
        post_migrate.connect(_install_beat_schedule, sender=beat, dispatch_uid="t2mobile_portal.install_beat_schedule")


class BackOfficeAdminConfig(AdminConfig):
    default_site = "t2mobile_portal.admin_site.BackOfficeSite"

    def ready(self) -> None:
        super().ready()
        from t2mobile_portal.checks import secret_checks_register  # noqa: PLC0415 (app loading: checks read settings)

        secret_checks_register()
        from t2mobile_portal.staff_groups import staff_groups_on_post_migrate  # noqa: PLC0415 (app loading: auth models)

        post_migrate.connect(staff_groups_on_post_migrate, dispatch_uid="t2mobile_portal.staff_groups")
