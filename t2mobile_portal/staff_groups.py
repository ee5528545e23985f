"""The back-office's custom permissions and its two staff groups, made after every ``migrate``.

Admin actions are guarded by permissions of their own (``orders.redrive_order``,
``webhooks.resend_webhook`` …), checked by ``has_<action>_permission`` on the ModelAdmins. They are
created here rather than in ``Meta.permissions`` so that no app needs a migration for them.

- **Support**: views everything except partner secrets, re-drives orders and resends webhook
  events; sees customer email and phone masked (no ``orders.view_customer_pii``).
- **Ops**: everything on the order, webhook, integration and schedule tables, except partner
  secrets (no access to webhook secrets and no creating API keys: both show a secret), unmasked
  customer contact details, which the contract keeps for superusers, and adding or deleting
  periodic tasks: Ops change when a task runs, not which task or with what arguments.

The groups' permissions are set from this module on every run (the code is the source of truth), so
the handler is idempotent and a fresh database needs no clicks.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

# (app label, model name, codename, name)
CUSTOM_PERMISSIONS: tuple[tuple[str, str, str, str], ...] = (
    ("orders", "order", "view_customer_pii", "Can see customer email and phone unmasked"),
    ("orders", "order", "redrive_order", "Can re-drive provisioning of an order"),
    ("orders", "order", "hold_order", "Can put an order on hold and release it"),
    ("orders", "order", "fail_order", "Can mark an order FAILED"),
    ("partners", "partner", "pause_deliveries", "Can pause and resume webhook deliveries of a partner"),
    ("catalogue", "product", "sync_catalogue", "Can start a catalogue sync from Zoho"),
    ("webhooks", "webhooklog", "resend_webhook", "Can resend a webhook event"),
)

SUPPORT_GROUP = "Support"
OPS_GROUP = "Ops"
BACK_OFFICE_APPS = ("orders", "catalogue", "webhooks", "partners", "django_celery_beat")
SECRET_MODELS = {("partners", "webhooksecret")}
SUPPORT_EXTRA = {("orders", "redrive_order"), ("webhooks", "resend_webhook")}
# Contract (orders-and-jobs.md): customer email and phone are masked for everyone but superusers, so
# neither group holds view_customer_pii; it can still be granted to one person when needed.
# Ops changes when a scheduled task runs, not which tasks exist: no adding or deleting periodic tasks
# (t2mobile_portal/admin_schedule.py keeps their task and arguments read-only for staff too).
OPS_DENIED = {
    ("partners", "add_apikey"),
    ("orders", "view_customer_pii"),
    ("django_celery_beat", "add_periodictask"),
    ("django_celery_beat", "delete_periodictask"),
}


def custom_permissions_ensure(*, apps=global_apps) -> None:

    for app_label, model_name, codename, name in CUSTOM_PERMISSIONS:
        model = apps.get_model(app_label, model_name)
        content_type = ContentType.objects.get_for_model(model, for_concrete_model=True)
        Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})


def staff_groups_ensure(*, apps=global_apps) -> None:
    """Create or update the Support and Ops groups (and the permissions they hold)."""

    # Default add/change/delete/view permissions of every app the groups cover, whichever app's
    # post_migrate runs first.
    for label in BACK_OFFICE_APPS:
        try:
            app_config = apps.get_app_config(label)
        except LookupError:
            continue
        create_permissions(app_config, verbosity=0, apps=apps)
    custom_permissions_ensure(apps=apps)

    covered = Permission.objects.filter(content_type__app_label__in=BACK_OFFICE_APPS).select_related("content_type")
    support, ops = [], []
    for permission in covered:
        app_label, model = permission.content_type.app_label, permission.content_type.model
        codename = permission.codename
        if (app_label, model) in SECRET_MODELS:
            continue
        if codename.startswith("view_") and codename != "view_customer_pii" or (app_label, codename) in SUPPORT_EXTRA:
            support.append(permission)
        if (app_label, codename) not in OPS_DENIED:
            ops.append(permission)
    Group.objects.get_or_create(name=SUPPORT_GROUP)[0].permissions.set(support)
    Group.objects.get_or_create(name=OPS_GROUP)[0].permissions.set(ops)


def staff_groups_on_post_migrate(sender, app_config=None, apps=global_apps, **kwargs) -> None:
    """post_migrate receiver; does its work once per migrate, after the last of our apps with models
    (``orders``, the top of the layers, is listed last in INSTALLED_APPS)."""
    if app_config is None or app_config.label != "orders":
        return
    try:
        apps.get_model("webhooks", "WebhookLog")
        apps.get_model("catalogue", "CatalogueSync")
        apps.get_model("partners", "Partner")
    except LookupError:  # migrating back to an older state: not every table is there
        return
    staff_groups_ensure()
