"""Staff resends: a new attempt under the same event id, for one event or every failed one."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.webhooks.conftest import Answer, record
from webhooks.controls import event_resend, events_resend_failed
from webhooks.delivery import DeliveryOutcome, event_deliver
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def test_resending_a_sent_event_sends_it_again_under_the_same_id(hooked_partner, receiver):
    event = record(hooked_partner)
    event_deliver(log_pk=event.pk)

    event_resend(log=event)
    outcome = event_deliver(log_pk=event.pk)

    event.refresh_from_db()
    assert outcome == DeliveryOutcome.SENT
    assert receiver.ids() == [event.event_id, event.event_id]
    assert event.status == WebhookLog.Status.SENT and event.attempts.count() == 2


def test_resending_a_failed_event_gives_it_a_fresh_schedule(hooked_partner, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = ()  # failed for good at once (a 410 would disable the endpoint)
    receiver.script = [Answer(500)]
    event = record(hooked_partner)
    event_deliver(log_pk=event.pk)

    resent = event_resend(log=event)

    assert resent.status == WebhookLog.Status.PENDING and resent.retries == 0
    settings.WEBHOOK_RETRY_SCHEDULE = (5,)
    assert event_deliver(log_pk=event.pk) == DeliveryOutcome.SENT


def test_resend_failed_since_takes_only_failed_events_from_that_time(hooked_partner, receiver):
    old_failed, new_failed, sent = (record(hooked_partner) for _ in range(3))
    WebhookLog.objects.filter(pk__in=[old_failed.pk, new_failed.pk]).update(status=WebhookLog.Status.FAILED)
    WebhookLog.objects.filter(pk=sent.pk).update(status=WebhookLog.Status.SENT)
    WebhookLog.objects.filter(pk=old_failed.pk).update(created_at=timezone.now() - timedelta(days=3))

    count = events_resend_failed(since=timezone.now() - timedelta(days=1))

    statuses = dict(WebhookLog.objects.values_list("pk", "status"))
    assert count == 1
    assert statuses == {old_failed.pk: "FAILED", new_failed.pk: "PENDING", sent.pk: "SENT"}


def test_resend_failed_until_leaves_the_events_created_from_then_on(hooked_partner, receiver):
    earlier, later = record(hooked_partner), record(hooked_partner)
    WebhookLog.objects.filter(pk__in=[earlier.pk, later.pk]).update(status=WebhookLog.Status.FAILED)
    WebhookLog.objects.filter(pk=earlier.pk).update(created_at=timezone.now() - timedelta(hours=2))

    count = events_resend_failed(
        since=timezone.now() - timedelta(days=1), until=timezone.now() - timedelta(hours=1), partner=hooked_partner
    )

    statuses = dict(WebhookLog.objects.values_list("pk", "status"))
    assert count == 1
    assert statuses == {earlier.pk: "PENDING", later.pk: "FAILED"}


def test_resend_webhook_command_resends_one_event(hooked_partner, receiver):
    event = record(hooked_partner)
    event_deliver(log_pk=event.pk)
    out = StringIO()

    call_command("resend_webhook", event.event_id, stdout=out)

    event.refresh_from_db()
    assert event.status == WebhookLog.Status.PENDING and event.event_id in out.getvalue()


def test_resend_webhook_command_with_failed_since(hooked_partner):
    event = record(hooked_partner)
    WebhookLog.objects.filter(pk=event.pk).update(status=WebhookLog.Status.FAILED)
    out = StringIO()

    call_command("resend_webhook", "--failed-since", "2020-01-01T00:00:00Z", stdout=out)

    event.refresh_from_db()
    assert event.status == WebhookLog.Status.PENDING and "Queued 1 failed event" in out.getvalue()


def test_resend_webhook_command_refuses_an_unknown_event(db):
    with pytest.raises(CommandError, match="No webhook event"):
        call_command("resend_webhook", "evt_missing")
