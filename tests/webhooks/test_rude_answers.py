"""Whatever a receiver answers, and however slowly, an attempt ends at its deadline and is recorded
like any other: slow headers, a slow or endless body, NUL bytes and invalid UTF-8, 10 MB. Real local
receivers (``trickle.py`` for the slow ones), the real PostgreSQL and Redis; a 2 s timeout."""

from datetime import timedelta

import pytest
from django.utils import timezone

from partners.models import WebhookSecret
from tests.webhooks.conftest import Answer, record
from tests.webhooks.test_batches import claimed
from tests.webhooks.trickle import TrickleReceiver, endless_body, slow_body, slow_headers
from webhooks import outcomes
from webhooks.client import DeliveryResult
from webhooks.delivery import DeliveryOutcome, batch_deliver, event_deliver
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog
from webhooks.outcomes import batch_record
from webhooks.sending import ClaimedEvent, Sent

pytestmark = pytest.mark.django_db

DEADLINE_MS = 2000
MARGIN_MS = 500  # the watchdog's wake-up, the recording, a loaded machine


@pytest.fixture(autouse=True)
def two_second_timeout(settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 2


def _pointed_at(partner, url, secret):
    partner.webhook_url = url
    partner.save()
    WebhookSecret.objects.create(partner=partner, secret=secret)
    return partner


def _failures(partner) -> int:
    return WebhookEndpointState.objects.get(partner=partner).consecutive_failures


def _assert_retried_on_the_schedule(event, *, before) -> None:
    event.refresh_from_db()
    assert event.status == WebhookLog.Status.PENDING and event.retries == 1
    assert before + timedelta(seconds=5) <= event.next_retry_at <= timezone.now() + timedelta(seconds=5.5)
    assert _failures(event.partner) == 1


def test_headers_sent_one_byte_a_second_are_cut_at_the_deadline_and_retried_on_the_schedule(
    partner, webhook_secret, limits_redis
):
    with TrickleReceiver(slow_headers(every=1.0)) as receiver:
        event = record(_pointed_at(partner, receiver.url, webhook_secret))
        before = timezone.now()

        outcome = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.RETRY
    assert attempt.status_code is None and attempt.error == "timeout after 2 s"
    assert DEADLINE_MS <= attempt.duration_ms < DEADLINE_MS + MARGIN_MS, attempt.duration_ms
    _assert_retried_on_the_schedule(event, before=before)
    (request,) = receiver.requests
    assert request.event_id == event.event_id
    assert request.hung_up - request.arrived < (DEADLINE_MS + MARGIN_MS) / 1000  # the connection really closed
    assert limits_redis.zcard(f"t2m:webhook_slots:{partner.pk}") == 0  # the slot is free again


@pytest.mark.parametrize(
    ("status", "outcome", "event_status"),
    [(b"200 OK", DeliveryOutcome.SENT, "SENT"), (b"503 Service Unavailable", DeliveryOutcome.RETRY, "PENDING")],
)
def test_a_body_sent_one_byte_at_a_time_is_cut_at_the_deadline_and_its_status_decides(
    partner, webhook_secret, status, outcome, event_status
):
    # The status line came in time: a 2xx is delivered ("any 2xx within 15 s"), a 503 is retried.
    with TrickleReceiver(slow_body(status=status, every=0.25)) as receiver:
        event = record(_pointed_at(partner, receiver.url, webhook_secret))

        result = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    event.refresh_from_db()
    assert result == outcome and event.status == event_status
    assert attempt.status_code == int(status[:3])
    assert attempt.error == "timeout after 2 s reading the response body"
    assert DEADLINE_MS <= attempt.duration_ms < DEADLINE_MS + MARGIN_MS, attempt.duration_ms
    assert 4 <= len(attempt.response_excerpt) <= 9 and set(attempt.response_excerpt) == {"a"}  # what had arrived
    assert receiver.ids() == [event.event_id]


def test_a_body_that_never_ends_is_cut_at_the_deadline_with_its_excerpt_cleaned(partner, webhook_secret):
    with TrickleReceiver(endless_body(status=b"500 Internal Server Error")) as receiver:
        event = record(_pointed_at(partner, receiver.url, webhook_secret))
        before = timezone.now()

        outcome = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.RETRY
    assert attempt.status_code == 500 and attempt.error == "timeout after 2 s reading the response body"
    assert DEADLINE_MS <= attempt.duration_ms < DEADLINE_MS + MARGIN_MS, attempt.duration_ms
    assert attempt.response_excerpt.startswith("\ufffdtick\ufffd \ufffdtick\ufffd ")
    assert "\x00" not in attempt.response_excerpt
    _assert_retried_on_the_schedule(event, before=before)
    (request,) = receiver.requests
    assert request.hung_up - request.arrived < (DEADLINE_MS + MARGIN_MS) / 1000


RUDE_BODY = b'{"ok":true}\x00\xff\xfe\x07end'
RUDE_BODY_STORED = '{"ok":true}\ufffd\ufffd\ufffd\ufffdend'


def test_a_200_with_nul_bytes_and_invalid_utf8_is_delivered_and_recorded_cleaned(hooked_partner, receiver):
    receiver.script = [Answer(200, RUDE_BODY)]
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    event.refresh_from_db()
    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.SENT and event.status == WebhookLog.Status.SENT
    assert attempt.status_code == 200 and attempt.response_excerpt == RUDE_BODY_STORED
    assert event.response["body"] == RUDE_BODY_STORED


def test_a_500_with_nul_bytes_and_invalid_utf8_is_retried_and_counted_as_any_failure(hooked_partner, receiver):
    receiver.script = [Answer(500, RUDE_BODY)]
    event = record(hooked_partner)
    before = timezone.now()

    outcome = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.RETRY
    assert attempt.status_code == 500 and attempt.response_excerpt == RUDE_BODY_STORED
    _assert_retried_on_the_schedule(event, before=before)


def test_a_10_mb_body_with_nul_bytes_keeps_2_kb_cleaned_and_ends_at_once(hooked_partner, receiver):
    receiver.script = [Answer(500, (b"\x00\xffok" * 2_621_440))]  # 10 MiB
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    assert outcome == DeliveryOutcome.RETRY and attempt.status_code == 500
    assert attempt.response_excerpt == "\ufffd\ufffdok" * 512
    assert attempt.duration_ms < DEADLINE_MS


def test_headers_with_control_characters_and_a_non_ascii_retry_after_are_recorded(hooked_partner, receiver):
    receiver.script = [
        Answer(302, headers={"Location": "http://elsewhere.test/\x01\x7f"}),
        Answer(503, headers={"Retry-After": "\u00b2"}),  # "²": a digit to str.isdigit, not to float()
    ]
    redirected, refused = record(hooked_partner), record(hooked_partner)

    outcomes_ = [event_deliver(log_pk=redirected.pk), event_deliver(log_pk=refused.pk)]

    assert outcomes_ == [DeliveryOutcome.RETRY, DeliveryOutcome.RETRY]
    assert redirected.attempts.get().error == "redirect to http://elsewhere.test/\ufffd\ufffd not followed"
    assert refused.attempts.get().status_code == 503


def test_one_rude_answer_in_a_claimed_batch_loses_none_of_the_other_outcomes(hooked_partner, receiver):
    events = [record(hooked_partner) for _ in range(3)]
    rude = events[1].event_id
    receiver.decide = lambda request: Answer(200, RUDE_BODY) if request.event_id == rude else Answer(200)
    log_pks, lease = claimed(hooked_partner)

    result = batch_deliver(log_pks=log_pks, lease=lease)

    assert sorted(result.values()) == [DeliveryOutcome.SENT] * 3
    assert WebhookLog.objects.filter(status="SENT").count() == 3
    assert WebhookAttempt.objects.get(log__event_id=rude).response_excerpt == RUDE_BODY_STORED


def test_an_attempt_that_cannot_be_stored_is_recorded_without_its_text_and_the_others_in_full(
    hooked_partner, monkeypatch
):
    # Should something unforeseen still make a row fail, the batch is recorded attempt by attempt.
    monkeypatch.setattr(outcomes, "text_clean", lambda value, *, max_chars: value or "")
    events = [record(hooked_partner) for _ in range(3)]
    log_pks, lease = claimed(hooked_partner)
    answers = [b"first", b"bad\x00", b"third"]
    attempts = [
        Sent(
            event=ClaimedEvent(e.pk, e.event_id, e.event_type, e.body, 0, None, None),
            started_at=timezone.now(),
            result=DeliveryResult(status_code=500, duration_ms=5, response_excerpt=answer.decode()),
        )
        for e, answer in zip(events, answers, strict=True)
    ]

    record_ = batch_record(
        partner_id=hooked_partner.pk, lease=lease, attempts=attempts, unsent=[], endpoint_failing=False
    )

    assert record_.outcomes == dict.fromkeys(log_pks, DeliveryOutcome.RETRY)
    stored = {a.log_id: (a.response_excerpt, a.error) for a in WebhookAttempt.objects.all()}
    assert stored == {
        events[0].pk: ("first", ""),
        events[1].pk: ("", "the answer could not be stored"),
        events[2].pk: ("third", ""),
    }
    assert _failures(hooked_partner) == 3
    assert set(WebhookLog.objects.values_list("retries", flat=True)) == {1}
