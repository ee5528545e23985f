"""The beat schedule a fresh database gets from ``migrate``, ``run_task``, and the idempotency purge."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from orders.idempotency import idempotency_records_purge
from orders.models import IdempotencyRecord
from t2mobile_portal.celery import app
from t2mobile_portal.schedule import SCHEDULE
from tests.factories import IdempotencyRecordFactory, SubscriptionFactory
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db

EXPECTED = {
    # task: (minute, hour)
    "orders.send_expiry_reminders": ("0", "2"),
    "orders.expire_subscriptions": ("0", "3"),
    "orders.redrive_stalled_orders": ("*", "*"),
    "webhooks.deliver_due_webhooks": ("*", "*"),
    "integrations.sync_zoho_catalogue": ("*/15", "*"),
    "orders.purge_idempotency_records": ("0", "4"),
    "webhooks.purge_webhook_logs": ("30", "4"),
    "partners.purge_webhook_secrets": ("45", "4"),
}


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- The schedule ---------------------------------------------------------------------------------


def test_migrated_database_has_the_whole_schedule_in_lagos_time():
    # pytest-django built this database with `migrate`; nobody installed anything by hand.
    tasks = PeriodicTask.objects.select_related("crontab").filter(task__in=EXPECTED)

    found = {t.task: (t.crontab.minute, t.crontab.hour) for t in tasks}
    assert found == EXPECTED
    for task in tasks:
        assert task.enabled
        assert str(task.crontab.timezone) == "Africa/Lagos"
        assert (task.crontab.day_of_week, task.crontab.day_of_month, task.crontab.month_of_year) == ("*", "*", "*")


def test_reminder_crontab_next_fires_at_two_in_the_morning_lagos_time():
    crontab = PeriodicTask.objects.get(task="orders.send_expiry_reminders").crontab.schedule
    lagos = ZoneInfo("Africa/Lagos")
    last_run = timezone.now() - timedelta(minutes=1)

    remaining = crontab.remaining_estimate(last_run)

    next_run = (timezone.now() + remaining).astimezone(lagos) + timedelta(seconds=30)
    assert (next_run.hour, next_run.minute) == (2, 0)
    assert remaining <= timedelta(days=1)


def test_install_again_keeps_times_staff_changed_and_adds_nothing():
    task = PeriodicTask.objects.get(task="orders.send_expiry_reminders")
    task.crontab = CrontabSchedule.objects.create(minute="15", hour="1", timezone="Africa/Lagos")
    task.enabled = False
    task.save()
    count = PeriodicTask.objects.count()

    out = run("install_beat_schedule")

    task.refresh_from_db()
    assert (task.crontab.hour, task.crontab.minute, task.enabled) == ("1", "15", False)
    assert PeriodicTask.objects.count() == count
    assert "0 created" in out


def test_install_recreates_an_entry_that_was_deleted():
    PeriodicTask.objects.filter(task="orders.expire_subscriptions").delete()

    out = run("install_beat_schedule")

    task = PeriodicTask.objects.get(task="orders.expire_subscriptions")
    assert (task.crontab.hour, task.crontab.minute) == ("3", "0")
    assert "created: Expire subscriptions" in out


# --- run_task -------------------------------------------------------------------------------------


def test_run_task_sends_reminders_as_of_a_given_night(partner, settings):
    settings.REMINDER_DAYS = [7]
    as_of = timezone.now() - timedelta(days=10)
    sub = SubscriptionFactory(partner=partner, expires_at=as_of + timedelta(days=3))

    out = run("run_task", "orders.send_expiry_reminders", "--as-of", as_of.isoformat())

    log = WebhookLog.objects.get()
    assert (log.event_type, log.order_id, log.payload["data"]["daysLeft"]) == (
        "EXPIRY_REMINDER",
        sub.origin_order_id,
        3,
    )
    assert "'sent': 1" in out


def test_run_task_expires_subscriptions(partner):
    sub = SubscriptionFactory(partner=partner, expires_at=timezone.now() - timedelta(minutes=5))

    run("run_task", "orders.expire_subscriptions")

    sub.refresh_from_db()
    assert sub.status == "EXPIRED"
    assert WebhookLog.objects.get().event_type == "SUBSCRIPTION_EXPIRED"


def test_run_task_unknown_name_says_which_exist():
    with pytest.raises(CommandError) as error:
        run("run_task", "orders.send_expiry_remindrs")

    assert "unknown task 'orders.send_expiry_remindrs'" in str(error.value)
    assert "orders.send_expiry_reminders" in str(error.value)


def test_run_task_refuses_as_of_for_a_task_without_it():
    with pytest.raises(CommandError, match="does not take --as-of"):
        run("run_task", "orders.purge_idempotency_records", "--as-of", "2026-11-23T02:00")


def test_bad_as_of_is_a_clear_error():
    with pytest.raises(CommandError, match="--as-of"):
        run("send_expiry_reminders", "--as-of", "last tuesday")


# --- Idempotency purge ----------------------------------------------------------------------------


def test_purge_deletes_only_expired_idempotency_records(partner):
    now = timezone.now()
    for i in range(5):
        IdempotencyRecordFactory(
            partner=partner, key=f"old-{i}", fingerprint="f", expires_at=now - timedelta(hours=1 + i)
        )
    live = IdempotencyRecordFactory(partner=partner, key="live", fingerprint="f", expires_at=now + timedelta(hours=1))

    deleted = idempotency_records_purge(batch_size=2)

    assert deleted == 5
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [live.pk]


def test_purge_command_by_run_task(partner):
    IdempotencyRecordFactory(
        partner=partner, key="old", fingerprint="f", expires_at=timezone.now() - timedelta(seconds=1)
    )

    out = run("run_task", "orders.purge_idempotency_records")

    assert IdempotencyRecord.objects.count() == 0
    assert "'deleted': 1" in out


def test_purge_command_runs_the_task_and_says_how_many_it_deleted(partner):
    IdempotencyRecordFactory(
        partner=partner, key="old", fingerprint="f", expires_at=timezone.now() - timedelta(seconds=1)
    )

    out = run("purge_idempotency_records")

    assert IdempotencyRecord.objects.count() == 0
    assert out == "idempotency records purged: 1\n"


def test_every_scheduled_task_is_registered_with_celery():
    app.loader.import_default_modules()

    missing = [entry.task for entry in SCHEDULE if entry.task not in app.tasks]
    assert missing == []
