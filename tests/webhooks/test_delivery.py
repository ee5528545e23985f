"""One delivery attempt and what it leaves behind: status, retries, next_retry_at, the attempt row."""

import logging
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from tests.webhooks.conftest import Answer, record
from webhooks.delivery import DeliveryOutcome, event_deliver
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def test_2xx_marks_the_event_sent_and_records_the_attempt(hooked_partner, receiver):
    receiver.script = [Answer(202, b'{"accepted":true}')]
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    event.refresh_from_db()
    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.SENT
    assert event.status == WebhookLog.Status.SENT and event.sent_at is not None and event.next_retry_at is None
    assert attempt.status_code == 202 and attempt.error == "" and attempt.response_excerpt == '{"accepted":true}'
    assert attempt.duration_ms < 5000
    assert event.response["statusCode"] == 202


def test_a_5xx_schedules_the_first_retry_after_5_seconds_with_at_most_10_percent_jitter(hooked_partner, receiver):
    receiver.script = [Answer(500, b"boom")]
    event = record(hooked_partner)

    before = timezone.now()
    outcome = event_deliver(log_pk=event.pk)

    event.refresh_from_db()
    assert outcome == DeliveryOutcome.RETRY
    assert event.status == WebhookLog.Status.PENDING and event.retries == 1
    assert before + timedelta(seconds=5) <= event.next_retry_at <= timezone.now() + timedelta(seconds=5.5)
    assert event.attempts.get().status_code == 500
    assert event.response == {
        "statusCode": 500,
        "body": "boom",
        "error": "",
        "attemptedAt": event.response["attemptedAt"],
    }


def test_an_event_is_not_sent_again_before_its_retry_is_due(hooked_partner, receiver):
    receiver.script = [Answer(500)]
    event = record(hooked_partner)
    event_deliver(log_pk=event.pk)

    outcome = event_deliver(log_pk=event.pk)

    assert outcome == DeliveryOutcome.SKIPPED
    assert len(receiver.received) == 1


def test_410_gone_stops_delivery_and_marks_the_event_failed(hooked_partner, receiver):
    receiver.default = Answer(410, b"unknown event")
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)
    WebhookLog.objects.filter(pk=event.pk).update(next_retry_at=timezone.now())
    again = event_deliver(log_pk=event.pk)

    event.refresh_from_db()
    assert (outcome, again) == (DeliveryOutcome.FAILED, DeliveryOutcome.SKIPPED)
    assert event.status == WebhookLog.Status.FAILED and event.retries == 0
    assert len(receiver.received) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_waited_at_least(hooked_partner, receiver, status):
    receiver.script = [Answer(status, headers={"Retry-After": "120"})]
    event = record(hooked_partner)

    before = timezone.now()
    event_deliver(log_pk=event.pk)

    event.refresh_from_db()
    assert event.next_retry_at >= before + timedelta(seconds=120)
    assert event.next_retry_at <= timezone.now() + timedelta(seconds=121)


def test_retry_after_as_an_http_date_is_waited_at_least(hooked_partner, receiver):
    when = timezone.now() + timedelta(minutes=10)
    receiver.script = [Answer(503, headers={"Retry-After": format_datetime(when, usegmt=True)})]
    event = record(hooked_partner)

    event_deliver(log_pk=event.pk)

    event.refresh_from_db()
    assert event.next_retry_at >= when - timedelta(seconds=1)


def test_a_redirect_is_not_followed_and_counts_as_a_failure(hooked_partner, receiver):
    receiver.script = [Answer(302, headers={"Location": receiver.url + "/elsewhere"})]
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.RETRY
    assert attempt.status_code == 302 and "not followed" in attempt.error
    assert [r.path for r in receiver.received] == ["/webhooks/t2mobile"]


def test_a_slow_receiver_times_out_and_is_retried(hooked_partner, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.script = [Answer(200, delay=1.5)]
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.RETRY
    assert attempt.status_code is None and "timeout" in attempt.error
    assert attempt.duration_ms < 1200


def test_only_the_first_2_kb_of_the_response_are_kept(hooked_partner, receiver):
    receiver.script = [Answer(500, b"x" * 10_000)]
    event = record(hooked_partner)

    event_deliver(log_pk=event.pk)

    assert event.attempts.get().response_excerpt == "x" * 2048


def test_a_connection_error_is_an_attempt_error(hooked_partner, receiver):
    receiver.server.server_close()  # nothing listens on the port any more
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.RETRY
    assert attempt.status_code is None and "ConnectionError" in attempt.error


def test_after_the_schedule_the_event_is_failed_and_an_error_is_logged(hooked_partner, receiver, settings, caplog):
    settings.WEBHOOK_RETRY_SCHEDULE = (0.0, 0.0)
    receiver.default = Answer(500)
    event = record(hooked_partner)

    with caplog.at_level(logging.ERROR, logger="webhooks.delivery"):
        outcomes = [event_deliver(log_pk=event.pk) for _ in range(4)]

    event.refresh_from_db()
    assert outcomes == [DeliveryOutcome.RETRY, DeliveryOutcome.RETRY, DeliveryOutcome.FAILED, DeliveryOutcome.SKIPPED]
    assert event.status == WebhookLog.Status.FAILED and event.next_retry_at is None
    assert event.attempts.count() == 3
    assert receiver.ids() == [event.event_id] * 3
    assert any("dead letter" in r.getMessage() and r.event_id == event.event_id for r in caplog.records)


def test_a_receiver_failing_twice_then_answering_gets_the_same_event_id_three_times(hooked_partner, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0.0, 0.0, 0.0)
    receiver.script = [Answer(500), Answer(502)]
    event = record(hooked_partner)

    outcomes = [event_deliver(log_pk=event.pk) for _ in range(3)]

    event.refresh_from_db()
    assert outcomes == [DeliveryOutcome.RETRY, DeliveryOutcome.RETRY, DeliveryOutcome.SENT]
    assert receiver.ids() == [event.event_id] * 3
    assert [a.status_code for a in event.attempts.all()] == [500, 502, 200]
    assert event.status == WebhookLog.Status.SENT and event.retries == 2


def test_a_partner_without_a_secret_gets_nothing_and_the_attempt_says_why(partner, receiver):
    partner.webhook_url = receiver.url
    partner.save()
    event = record(partner)

    outcome = event_deliver(log_pk=event.pk)

    assert outcome == DeliveryOutcome.RETRY
    assert "no active webhook secret" in event.attempts.get().error
    assert receiver.received == []
