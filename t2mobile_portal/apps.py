"""The Django admin as our back-office: the admin app with our site, and the staff groups.

``INSTALLED_APPS`` lists ``t2mobile_portal.apps.BackOfficeAdminConfig`` in place of
``django.contrib.admin``, so ``admin.site`` (and ``admin.site.urls`` in ``urls.py``) is
``BackOfficeSite``: the overview on the index page and a rate-limited login. Its ``ready`` also
registers the system checks that refuse weak secrets (``t2mobile_portal/checks.py``).
"""

from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate


class BackOfficeAdminConfig(AdminConfig):
    default_site = "t2mobile_portal.admin_site.BackOfficeSite"

    def ready(self) -> None:
        super().ready()
        from t2mobile_portal.checks import secret_checks_register  # app loading: checks read settings

        secret_checks_register()
        from t2mobile_portal.staff_groups import staff_groups_on_post_migrate

        post_migrate.connect(staff_groups_on_post_migrate, dispatch_uid="t2mobile_portal.staff_groups")
