"""Issue 21, point 1: Ops may change when a scheduled task runs, never which task or with what.

The attack: Ops adds (or edits) a periodic task ``orders.expire_subscriptions`` with kwargs
``{"as_of": "2099-12-31T00:00:00Z"}``; when the beat fires it, every ACTIVE subscription becomes
EXPIRED and every partner is sent SUBSCRIPTION_EXPIRED. Both doors are shut: the admin (no add or
delete, task and arguments read-only for staff) and the tasks (a future ``as_of`` is refused).
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

import orders.tasks
from orders.models import Subscription
from t2mobile_portal.celery import app
from tests.factories import SubscriptionFactory
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db

FAR_FUTURE = "2099-12-31T00:00:00Z"
ADD = reverse("admin:django_celery_beat_periodictask_add")


def change_url(task: PeriodicTask) -> str:
    return reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])


def form_of(entry: PeriodicTask, **overrides) -> dict:
    """Every field of the beat admin's change form, as a browser would post it."""
    data = {
        "name": entry.name,
        "regtask": "",
        "task": entry.task,
        "enabled": "on" if entry.enabled else "",
        "description": entry.description,
        "interval": entry.interval_id or "",
        "crontab": entry.crontab_id or "",
        "solar": "",
        "clocked": "",
        "start_time_0": "",
        "start_time_1": "",
        "one_off": "",
        "args": entry.args,
        "kwargs": entry.kwargs,
        "expires_0": "",
        "expires_1": "",
        "expire_seconds": "",
        "queue": entry.queue or "",
        "exchange": entry.exchange or "",
        "routing_key": entry.routing_key or "",
        "priority": "",
        "headers": entry.headers,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value != ""}


def run_as_beat(task: PeriodicTask):
    """What the beat does when ``task`` is due: send its task with its stored args and kwargs."""
    app.loader.import_default_modules()
    return app.tasks[task.task].apply(args=json.loads(task.args), kwargs=json.loads(task.kwargs), throw=True)


@pytest.fixture
def production_database(monkeypatch):
    """The tasks as they behave outside the test suite's own database."""
    monkeypatch.setattr(orders.tasks, "_test_database_in_use", lambda: False, raising=False)


@pytest.fixture
def subscriptions(partner):
    return [SubscriptionFactory(partner=partner, expires_at=timezone.now() + timedelta(days=20 + i)) for i in range(3)]


# --- The admin ------------------------------------------------------------------------------------


def test_ops_cannot_add_a_periodic_task(ops):
    crontab = CrontabSchedule.objects.first()
    count = PeriodicTask.objects.count()
    attack = {
        "name": "expire everything",
        "task": "orders.expire_subscriptions",
        "enabled": "on",
        "crontab": crontab.pk,
        "args": "[]",
        "kwargs": json.dumps({"as_of": FAR_FUTURE}),
        "headers": "{}",
    }

    response = ops.post(ADD, attack)

    assert response.status_code == 403
    assert PeriodicTask.objects.count() == count
    assert (
        "Add periodic task" not in ops.get(reverse("admin:django_celery_beat_periodictask_changelist")).content.decode()
    )


def test_ops_edit_changes_the_timing_and_ignores_task_arguments_and_routing(ops):
    entry = PeriodicTask.objects.get(task="orders.send_expiry_reminders")
    other_time, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="1", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Africa/Lagos"
    )
    attack = form_of(
        entry,
        task="orders.expire_subscriptions",
        regtask="orders.expire_subscriptions",
        name="renamed",
        args='["x"]',
        kwargs=json.dumps({"as_of": FAR_FUTURE}),
        queue="evil",
        exchange="evil",
        routing_key="evil",
        headers='{"h": 1}',
        priority="9",
        crontab=other_time.pk,
        enabled="",
    )

    response = ops.post(change_url(entry), attack)

    assert response.status_code == 302, response.content.decode()[:2000]
    entry.refresh_from_db()
    assert (entry.crontab_id, entry.enabled) == (other_time.pk, False)  # when: changed
    assert (entry.name, entry.task, entry.args, entry.kwargs) == (
        "Send expiry reminders",
        "orders.send_expiry_reminders",
        "[]",
        "{}",
    )
    assert (entry.queue, entry.exchange, entry.routing_key, entry.headers, entry.priority) == (
        None,
        None,
        None,
        "{}",
        None,
    )


def test_ops_change_page_shows_task_and_arguments_as_text(ops):
    entry = PeriodicTask.objects.get(task="orders.expire_subscriptions")

    page = ops.get(change_url(entry)).content.decode()

    assert 'name="crontab"' in page and 'name="enabled"' in page
    for field in ("task", "regtask", "kwargs", "args", "queue", "exchange", "routing_key", "headers", "name"):
        assert f'name="{field}"' not in page


def test_ops_cannot_delete_a_periodic_task_nor_the_crontab_it_runs_on(ops):
    entry = PeriodicTask.objects.get(task="orders.expire_subscriptions")
    delete_task = reverse("admin:django_celery_beat_periodictask_delete", args=[entry.pk])
    delete_crontab = reverse("admin:django_celery_beat_crontabschedule_delete", args=[entry.crontab_id])

    assert ops.post(delete_task, {"post": "yes"}).status_code == 403
    assert ops.post(delete_crontab, {"post": "yes"}).status_code == 403  # it would cascade to the task
    assert PeriodicTask.objects.filter(pk=entry.pk, crontab_id=entry.crontab_id).exists()


def test_a_superuser_keeps_full_control_of_the_schedule(superuser):
    crontab = CrontabSchedule.objects.first()

    response = superuser.post(
        ADD,
        {
            "name": "reminders as of a past night",
            "task": "orders.send_expiry_reminders",
            "enabled": "on",
            "crontab": crontab.pk,
            "args": "[]",
            "kwargs": json.dumps({"as_of": "2026-01-01T02:00:00+01:00"}),
            "headers": "{}",
        },
    )

    assert response.status_code == 302
    assert PeriodicTask.objects.get(name="reminders as of a past night").kwargs.startswith('{"as_of"')


# --- The tasks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_name", ["orders.expire_subscriptions", "orders.send_expiry_reminders"])
def test_a_periodic_task_dated_in_the_future_is_refused_by_the_task(production_database, subscriptions, task_name):
    # Added before the admin was closed, or by a superuser's slip: the task itself refuses.
    crontab = CrontabSchedule.objects.first()
    entry = PeriodicTask.objects.create(
        name=f"{task_name} 2099", task=task_name, crontab=crontab, kwargs=json.dumps({"as_of": FAR_FUTURE})
    )

    with pytest.raises(orders.tasks.FutureAsOfRefused):
        run_as_beat(entry)

    assert set(Subscription.objects.values_list("status", flat=True)) == {Subscription.Status.ACTIVE}
    assert WebhookLog.objects.count() == 0


def test_an_as_of_a_few_minutes_ahead_or_in_the_past_still_runs(production_database, partner, subscriptions):
    overdue = SubscriptionFactory(partner=partner, expires_at=timezone.now() - timedelta(days=2))
    soon = (timezone.now() + timedelta(minutes=2)).isoformat()
    missed_night = (timezone.now() - timedelta(days=1)).isoformat()

    ahead = app.tasks["orders.expire_subscriptions"].apply(kwargs={"as_of": soon}, throw=True)
    out = StringIO()
    call_command("run_task", "orders.expire_subscriptions", "--as-of", missed_night, stdout=out)

    assert ahead.result["expired"] == 1
    overdue.refresh_from_db()
    assert overdue.status == Subscription.Status.EXPIRED
    assert Subscription.objects.filter(status=Subscription.Status.ACTIVE).count() == len(subscriptions)


def test_run_task_with_a_future_as_of_is_a_clear_error(production_database, subscriptions):
    with pytest.raises(CommandError, match="in the future"):
        call_command("run_task", "orders.expire_subscriptions", "--as-of", FAR_FUTURE)

    assert set(Subscription.objects.values_list("status", flat=True)) == {Subscription.Status.ACTIVE}


def test_only_the_test_runners_database_in_the_test_environment_counts_as_a_test_database(monkeypatch):
    assert orders.tasks._test_database_in_use()

    monkeypatch.setitem(connection.settings_dict, "NAME", "t2mobile")
    assert not orders.tasks._test_database_in_use()
    monkeypatch.undo()

    monkeypatch.delattr(mail, "outbox")
    assert not orders.tasks._test_database_in_use()
