"""Endpoint health: a 410, or failing every attempt for WEBHOOK_DISABLE_AFTER_DAYS, disables a
partner's endpoint; a disabled endpoint gets nothing and its events wait, PENDING, until staff enable
it. A PING never counts towards an endpoint's failures and is attempted three times at most.

The failing spells are real time stamps written into the state rows (data, not a moved clock),
followed by one more real attempt against the local receiver."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from partners.models import Partner, WebhookSecret
from partners.services import secret_generate
from tests.webhooks.conftest import Answer, make_order, record, running_worker, serving_receiver, wait_until
from webhooks import delivery, outbox
from webhooks.client import DeliveryResult
from webhooks.controls import endpoint_disable, endpoint_enable
from webhooks.delivery import DeliveryOutcome, batch_deliver, event_deliver
from webhooks.dispatch import events_claim_due, events_dispatch_due
from webhooks.models import WebhookEndpointState, WebhookLog
from webhooks.outbox import event_record
from webhooks.outcomes import batch_record
from webhooks.selectors import delivery_gate, endpoints_disabled, partners_with_due_events
from webhooks.sending import ClaimedEvent, Sent
from webhooks.tasks import deliver_due_webhooks, deliver_webhook

Reason = WebhookEndpointState.DisabledReason


def _state(partner) -> WebhookEndpointState:
    return WebhookEndpointState.objects.get(partner=partner)


def _status(event) -> str:
    return WebhookLog.objects.values_list("status", flat=True).get(pk=event.pk)


def ping(partner) -> WebhookLog:
    """A PING recorded as POST /t2mobile/webhooks/test records it: no order."""
    return event_record(partner=partner, event_type=WebhookLog.EventType.PING, data={"message": "hello"})


def failing_for(partner, *, days: float) -> WebhookEndpointState:
    """The partner's endpoint has failed every attempt for ``days`` (its slot free for one more)."""
    since = timezone.now() - timedelta(days=days)
    return WebhookEndpointState.objects.create(
        partner=partner, consecutive_failures=7, failing_since=since, last_failure_at=since + timedelta(hours=1)
    )


@pytest.fixture
def other_receiver():
    with serving_receiver() as receiver:
        yield receiver


@pytest.fixture
def other_partner(db, other_receiver) -> Partner:
    other = Partner.objects.create(partner_id="OTHER01", name="Other", webhook_url=other_receiver.url)
    WebhookSecret.objects.create(partner=other, secret=secret_generate())
    return other


# --- 410 Gone ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_410_disables_the_endpoint_at_once_and_fails_its_event(hooked_partner, receiver):
    receiver.default = Answer(410, b"gone")
    event = record(hooked_partner)
    before = timezone.now()

    outcome = event_deliver(log_pk=event.pk)

    state = _state(hooked_partner)
    assert outcome == DeliveryOutcome.FAILED and _status(event) == "FAILED"
    assert state.is_disabled and state.disabled_reason == Reason.GONE
    assert before <= state.disabled_at <= timezone.now()


@pytest.mark.django_db
def test_a_disabled_endpoint_is_neither_claimed_nor_listed_nor_sent_and_its_events_stay_pending(
    hooked_partner, receiver
):
    events = [record(hooked_partner) for _ in range(3)]
    endpoint_disable(partner=hooked_partner, reason=Reason.GONE, now=timezone.now())

    claims = events_claim_due(partner=hooked_partner)
    listed = list(partners_with_due_events(now=timezone.now()))
    queued_task = deliver_webhook(events[0].pk)  # a delivery queued before the endpoint was disabled
    dispatched = events_dispatch_due()

    assert (claims, listed, queued_task, dispatched) == ([], [], "SKIPPED", 0)
    assert receiver.received == []
    assert [(e.status, e.retries, e.attempts.count()) for e in WebhookLog.objects.order_by("pk")] == [
        ("PENDING", 0, 0)
    ] * 3


@pytest.mark.django_db
def test_a_batch_claimed_before_the_endpoint_was_disabled_sends_nothing_and_gives_its_events_back(
    hooked_partner, receiver
):
    events = [record(hooked_partner) for _ in range(3)]
    claims = events_claim_due(partner=hooked_partner)
    endpoint_disable(partner=hooked_partner, reason=Reason.GONE, now=timezone.now())

    outcomes = batch_deliver(log_pks=[pk for pk, _ in claims], lease=claims[0][1])

    assert outcomes == {} and receiver.received == []
    due = WebhookLog.objects.filter(status="PENDING", retries=0, next_retry_at__lte=timezone.now())
    assert sorted(due.values_list("pk", flat=True)) == [e.pk for e in events]


@pytest.mark.django_db(transaction=True)
def test_after_a_410_the_partner_s_new_events_wait_while_another_partner_s_go_out(
    hooked_partner, receiver, other_partner, other_receiver
):
    receiver.script = [Answer(410)]
    with running_worker():
        with transaction.atomic():
            first = record(hooked_partner)
        wait_until(lambda: _state(hooked_partner).is_disabled if _status(first) == "FAILED" else False)

        order = make_order(hooked_partner)
        with transaction.atomic():  # queued directly on commit, were the endpoint not disabled
            waiting = [record(hooked_partner, kind, order) for kind in ("ORDER_FULFILLED", "EXPIRY_REMINDER")]
            others = [record(other_partner) for _ in range(3)]
        deliver_due_webhooks()  # a dispatch run
        deliver_webhook.delay(waiting[0].pk)  # a delivery queued for the disabled endpoint
        other_receiver.wait_for(3)
        time.sleep(1.0)  # the worker had time to send the queued delivery, had it been allowed to

    assert receiver.ids() == [first.event_id]
    assert sorted(other_receiver.ids()) == sorted(e.event_id for e in others)
    assert [_status(e) for e in [first, *waiting]] == ["FAILED", "PENDING", "PENDING"]
    assert all(e.attempts.count() == 0 for e in waiting)


# --- Failing for WEBHOOK_DISABLE_AFTER_DAYS ----------------------------------------------------------


@pytest.mark.django_db
def test_one_more_failure_after_five_days_of_failures_disables_the_endpoint_and_the_event_waits(
    hooked_partner, receiver, settings
):
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 5
    failing_for(hooked_partner, days=5)
    receiver.default = Answer(500)
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    state = _state(hooked_partner)
    assert outcome == DeliveryOutcome.RETRY and _status(event) == "PENDING"
    assert state.is_disabled and state.disabled_reason == Reason.FAILING
    WebhookLog.objects.filter(pk=event.pk).update(next_retry_at=timezone.now())
    assert events_claim_due(partner=hooked_partner) == []


@pytest.mark.django_db
def test_one_more_failure_after_four_point_nine_days_does_not_disable(hooked_partner, receiver, settings):
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 5
    since = failing_for(hooked_partner, days=4.9).failing_since
    receiver.default = Answer(500)
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    state = _state(hooked_partner)
    assert outcome == DeliveryOutcome.RETRY
    assert not state.is_disabled and state.disabled_reason == ""
    assert state.failing_since == since and state.consecutive_failures == 8


@pytest.mark.django_db
def test_failing_since_is_the_first_failure_after_a_success_and_a_success_clears_it(hooked_partner, receiver):
    receiver.script = [Answer(500), Answer(500)]
    event = record(hooked_partner)

    event_deliver(log_pk=event.pk)
    first_failure = _state(hooked_partner).failing_since
    WebhookLog.objects.filter(pk=event.pk).update(next_retry_at=timezone.now())
    event_deliver(log_pk=event.pk)
    after_second = _state(hooked_partner).failing_since
    WebhookLog.objects.filter(pk=event.pk).update(next_retry_at=timezone.now())
    event_deliver(log_pk=event.pk)

    attempts = list(event.attempts.values_list("attempted_at", flat=True))
    assert first_failure == attempts[0] and after_second == first_failure
    assert _state(hooked_partner).failing_since is None and _status(event) == "SENT"


@pytest.mark.django_db
def test_enabling_clears_the_disabled_state_and_restarts_the_failing_clock(hooked_partner, receiver):
    failing_for(hooked_partner, days=6)
    endpoint_disable(partner=hooked_partner, reason=Reason.FAILING, now=timezone.now())
    receiver.default = Answer(500)
    event = record(hooked_partner)

    enabled = endpoint_enable(partner=hooked_partner)
    cleared = _state(hooked_partner)
    event_deliver(log_pk=event.pk)

    assert enabled is True and endpoint_enable(partner=hooked_partner) is False
    assert (cleared.disabled_at, cleared.disabled_reason, cleared.failing_since) == (None, "", None)
    state = _state(hooked_partner)
    assert not state.is_disabled and state.failing_since == event.attempts.get().attempted_at


@pytest.mark.django_db
def test_endpoints_disabled_lists_the_disabled_ones_with_partner_when_and_why(hooked_partner, other_partner):
    disabled_at = timezone.now() - timedelta(hours=2)
    endpoint_disable(partner=hooked_partner, reason=Reason.GONE, now=disabled_at)
    WebhookEndpointState.objects.create(partner=other_partner, consecutive_failures=3)  # failing, not disabled

    rows = [(s.partner_id, s.partner.partner_id, s.disabled_at, s.disabled_reason) for s in endpoints_disabled()]

    assert rows == [(hooked_partner.pk, hooked_partner.partner_id, disabled_at, "GONE")]


# --- PING ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_ping_answered_500_three_times_is_failed_after_exactly_three_attempts_and_the_endpoint_is_not_failing(
    hooked_partner, receiver, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = (0.0,) * 9  # retries due at once; the schedule is not what stops it
    receiver.default = Answer(500)
    event = ping(hooked_partner)

    outcomes = []
    for _ in range(4):
        outcomes.append(event_deliver(log_pk=event.pk))
        WebhookLog.objects.filter(pk=event.pk, status="PENDING").update(next_retry_at=timezone.now())

    state = WebhookEndpointState.objects.filter(partner=hooked_partner).first()
    assert outcomes == [DeliveryOutcome.RETRY, DeliveryOutcome.RETRY, DeliveryOutcome.FAILED, DeliveryOutcome.SKIPPED]
    assert _status(event) == "FAILED" and event.attempts.count() == 3 and len(receiver.received) == 3
    assert state is None or (state.consecutive_failures, state.failing_since, state.disabled_at) == (0, None, None)


@pytest.mark.django_db
def test_a_ping_answered_410_does_not_disable_the_endpoint(hooked_partner, receiver):
    receiver.script = [Answer(410)]
    event = ping(hooked_partner)
    later = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    assert outcome == DeliveryOutcome.FAILED
    assert not WebhookEndpointState.objects.filter(partner=hooked_partner, disabled_at__isnull=False).exists()
    assert event_deliver(log_pk=later.pk) == DeliveryOutcome.SENT


@pytest.mark.django_db
def test_a_ping_answered_2xx_ends_a_failing_spell(hooked_partner, receiver):
    failing_for(hooked_partner, days=1)
    event = ping(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    state = _state(hooked_partner)
    assert outcome == DeliveryOutcome.SENT
    assert (state.consecutive_failures, state.failing_since) == (0, None) and state.last_success_at is not None


@pytest.mark.django_db
def test_a_ping_to_a_disabled_endpoint_waits_like_every_event(hooked_partner, receiver):
    endpoint_disable(partner=hooked_partner, reason=Reason.GONE, now=timezone.now())
    event = ping(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    assert outcome == DeliveryOutcome.SKIPPED and _status(event) == "PENDING" and receiver.received == []
    assert _state(hooked_partner).is_disabled


@pytest.mark.django_db
def test_a_ping_answered_2xx_while_the_endpoint_was_disabled_does_not_enable_it(hooked_partner):
    failing_for(hooked_partner, days=1)
    event = ping(hooked_partner)
    ((log_pk, lease),) = events_claim_due(partner=hooked_partner)
    endpoint_disable(partner=hooked_partner, reason=Reason.FAILING, now=timezone.now())  # while the PING was out
    claimed = ClaimedEvent(log_pk, event.event_id, event.event_type, event.body, 0, None, None)
    answered = Sent(event=claimed, started_at=timezone.now(), result=DeliveryResult(status_code=200, duration_ms=3))

    record_ = batch_record(
        partner_id=hooked_partner.pk, lease=lease, attempts=[answered], unsent=[], endpoint_failing=True
    )

    state = _state(hooked_partner)
    assert record_.outcomes == {event.pk: DeliveryOutcome.SENT}
    assert state.consecutive_failures == 0 and state.is_disabled and state.disabled_reason == Reason.FAILING


@pytest.mark.django_db
def test_a_new_event_of_a_disabled_endpoint_is_not_queued_on_commit(
    hooked_partner, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(outbox, "delivery_enqueue", lambda pk, **kw: queued.append(pk))
    monkeypatch.setattr(outbox, "dispatch_enqueue", lambda **kw: queued.append(kw))
    endpoint_disable(partner=hooked_partner, reason=Reason.GONE, now=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        event = record(hooked_partner)

    assert queued == [] and _status(event) == "PENDING"


@pytest.mark.django_db
def test_an_endpoint_disabled_after_the_delivery_read_its_gate_is_not_sent_to(hooked_partner, receiver, monkeypatch):
    event = record(hooked_partner)
    gate_before = delivery_gate(log_pk=event.pk)
    monkeypatch.setattr(delivery, "delivery_gate", lambda log_pk: gate_before)
    endpoint_disable(partner=hooked_partner, reason=Reason.GONE, now=timezone.now())

    outcome = event_deliver(log_pk=event.pk)

    assert outcome == DeliveryOutcome.SKIPPED and receiver.received == [] and _status(event) == "PENDING"
