"""The beat schedule of orders-and-jobs.md, written into django-celery-beat's tables.

It lives in the composition root because it names the tasks of every app. ``beat_schedule_install()``
runs after every ``migrate`` (a ``post_migrate`` handler in ``t2mobile_portal/apps.py``) and from
``manage.py install_beat_schedule``. It creates what is missing and
changes nothing else: a time staff changed in the admin stays as they set it, and a task they
disabled stays disabled. Every crontab is in ``TIME_ZONE`` (Africa/Lagos).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Q
from django_celery_beat.models import CrontabSchedule, PeriodicTask


@dataclass(frozen=True)
class ScheduledTask:
    name: str  # the PeriodicTask name staff see in the admin
    task: str  # the Celery task name
    minute: str
    hour: str = "*"
    description: str = ""


SCHEDULE: tuple[ScheduledTask, ...] = (
    ScheduledTask(
        "Send expiry reminders",
        "orders.send_expiry_reminders",
        minute="0",
        hour="2",
        description="One EXPIRY_REMINDER per ACTIVE subscription and REMINDER_DAYS threshold.",
    ),
    ScheduledTask(
        "Expire subscriptions",
        "orders.expire_subscriptions",
        minute="0",
        hour="3",
        description="ACTIVE subscriptions past expires_at become EXPIRED, with SUBSCRIPTION_EXPIRED.",
    ),
    ScheduledTask(
        "Re-drive stalled orders",
        "orders.redrive_stalled_orders",
        minute="*",
        description="Queues PROCESSING orders whose next attempt is due and that no worker holds.",
    ),
    ScheduledTask(
        "Deliver due webhooks",
        "webhooks.deliver_due_webhooks",
        minute="*",
        description="Picks webhook events whose next attempt is due.",
    ),
    ScheduledTask(
        "Sync Zoho catalogue",
        "integrations.sync_zoho_catalogue",
        minute="*/15",
        description="Refreshes the local catalogue from Zoho.",
    ),
    ScheduledTask(
        "Purge idempotency records",
        "orders.purge_idempotency_records",
        minute="0",
        hour="4",
        description="Removes idempotency records past their expiry.",
    ),
    ScheduledTask(
        "Purge webhook logs",
        "webhooks.purge_webhook_logs",
        minute="30",
        hour="4",
        description="Removes delivered and failed webhook events past their retention.",
    ),
    ScheduledTask(
        "Purge webhook secrets",
        "partners.purge_webhook_secrets",
        minute="45",
        hour="4",
        description="Deletes signing secrets a day past their rotation grace; a partner's newest secret is kept.",
    ),
    ScheduledTask(
        "Send staff alerts",
        "alerts.send_staff_alerts",
        minute="*",
        description="Mails ADMINS each active alert (endpoints, dead letters, Zoho, stuck orders) once an hour.",
    ),
)


def beat_schedule_install(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Create the periodic tasks of ``SCHEDULE`` that do not exist yet; returns the names created.

    An entry exists when a PeriodicTask has its name or runs its task (staff may have renamed it), so
    running this again, after any change in the admin, creates nothing and overwrites nothing.
    """

    created = []
    with transaction.atomic(using=using):
        for entry in SCHEDULE:
            if PeriodicTask.objects.using(using).filter(Q(name=entry.name) | Q(task=entry.task)).exists():
                continue
            crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
                minute=entry.minute,
                hour=entry.hour,
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone=settings.TIME_ZONE,
            )
            PeriodicTask.objects.using(using).create(
                name=entry.name, task=entry.task, crontab=crontab, description=entry.description
            )
            created.append(entry.name)
    return created


def beat_tables_exist(using: str = DEFAULT_DB_ALIAS) -> bool:
    """False while django_celery_beat is not migrated yet (e.g. ``migrate orders`` on its own)."""

    tables = set(connections[using].introspection.table_names())
    return {PeriodicTask._meta.db_table, CrontabSchedule._meta.db_table} <= tables
