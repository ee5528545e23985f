"""Batches: a claimed batch is sent on at most WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER lanes, recorded in
one transaction, and stops early (its rest given back, due) when the endpoint fails, the partner is
paused, or its lease would run out; a killed or stale batch loses nothing and sends nothing twice
under a live lease."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from partners.services import webhook_secret_rotate
from tests.webhooks.conftest import Answer, make_order, record
from webhooks import delivery, sending
from webhooks.controls import partner_deliveries_pause
from webhooks.delivery import DeliveryOutcome, batch_deliver
from webhooks.dispatch import events_claim_due, events_dispatch_due
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog
from webhooks.slots import slots_release, slots_take
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db(transaction=True)


def claimed(partner, limit=None):
    claims = events_claim_due(partner=partner, limit=limit)
    return [pk for pk, _ in claims], claims[0][1]


def most_at_once(attempts) -> int:
    """The most attempts that overlapped in time, from the attempt log."""
    edges = []
    for attempt in attempts:
        edges += [(attempt.attempted_at, 1), (attempt.attempted_at + timedelta(milliseconds=attempt.duration_ms), -1)]
    current = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        peak = max(peak, current)
    return peak


def test_a_batch_is_sent_on_at_most_the_cap_of_lanes_and_every_attempt_is_logged(hooked_partner, receiver, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 3
    receiver.default = Answer(200, b'{"ok":true}', delay=0.05)
    events = [record(hooked_partner) for _ in range(24)]
    log_pks, lease = claimed(hooked_partner)

    outcomes = batch_deliver(log_pks=log_pks, lease=lease)

    assert outcomes == dict.fromkeys((e.pk for e in events), DeliveryOutcome.SENT)
    assert sorted(receiver.ids()) == sorted(e.event_id for e in events)
    attempts = list(WebhookAttempt.objects.all())
    assert len(attempts) == 24 and {a.status_code for a in attempts} == {200}
    assert 2 <= most_at_once(attempts) <= 3
    for event in WebhookLog.objects.all():
        assert event.status == WebhookLog.Status.SENT and event.next_retry_at is None and event.sent_at
        assert event.response["statusCode"] == 200 and event.response["body"] == '{"ok":true}'


def test_a_batch_finding_no_free_slot_gives_its_events_back_and_asks_for_a_dispatch(
    hooked_partner, receiver, settings, clean_redis, limits_redis
):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 2
    events = [record(hooked_partner) for _ in range(5)]
    log_pks, lease = claimed(hooked_partner)
    slots_take(partner_id=hooked_partner.pk, until_epoch=time.time() + 60, wanted=2)  # two attempts in flight

    outcomes = batch_deliver(log_pks=log_pks, lease=lease)

    assert set(outcomes.values()) == {DeliveryOutcome.DEFERRED} and receiver.received == []
    assert WebhookLog.objects.filter(next_retry_at__lte=timezone.now(), status="PENDING").count() == len(events)
    [dispatch] = [json.loads(raw)["headers"] for raw in clean_redis.lrange("default", 0, -1)]
    assert dispatch["task"] == "webhooks.deliver_due_webhooks"


def test_a_failing_endpoint_s_one_attempt_waits_while_the_partner_has_its_cap_in_flight(
    hooked_partner, receiver, settings
):
    # The endpoint has just started failing while the attempts of its healthy spell are still out.
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 2
    WebhookEndpointState.objects.update_or_create(partner=hooked_partner, defaults={"consecutive_failures": 1})
    record(hooked_partner)
    log_pks, lease = claimed(hooked_partner)
    assert len(log_pks) == 1  # a failing endpoint: one event, in the endpoint's slot
    in_flight = slots_take(partner_id=hooked_partner.pk, until_epoch=time.time() + 60, wanted=2)

    outcomes = batch_deliver(log_pks=log_pks, lease=lease)

    assert set(outcomes.values()) == {DeliveryOutcome.DEFERRED} and receiver.received == []
    slots_release(in_flight)  # they are done: the next try sends it
    WebhookEndpointState.objects.filter(partner=hooked_partner).update(busy_until=None)
    log_pks, lease = claimed(hooked_partner)
    assert batch_deliver(log_pks=log_pks, lease=lease) == {log_pks[0]: DeliveryOutcome.SENT}
    assert len(receiver.received) == 1


def test_an_order_s_events_go_one_batch_after_another_in_creation_order(hooked_partner, receiver):
    order = make_order(hooked_partner)
    kinds = ("ORDER_FULFILLED", "EXPIRY_REMINDER", "SUBSCRIPTION_EXPIRED")
    own = [record(hooked_partner, kind, order) for kind in kinds]
    others = [record(hooked_partner) for _ in range(5)]
    log_pks, lease = claimed(hooked_partner)

    batch_deliver(log_pks=log_pks, lease=lease)

    assert own[0].pk in log_pks and not {own[1].pk, own[2].pk} & set(log_pks)  # one event per order
    ids = receiver.ids()
    assert [i for i in ids if i in {e.event_id for e in own}] == [e.event_id for e in own]
    assert set(ids) == {e.event_id for e in own + others}
    first_ends = [a.attempted_at + timedelta(milliseconds=a.duration_ms) for a in own[0].attempts.all()]
    assert own[1].attempts.get().attempted_at >= max(first_ends)


def test_an_endpoint_failing_mid_batch_stops_the_batch_and_gets_one_attempt_at_a_time(
    hooked_partner, receiver, settings
):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 1
    receiver.script = [Answer(200)] * 5
    receiver.default = Answer(500)
    events = [record(hooked_partner) for _ in range(30)]
    log_pks, lease = claimed(hooked_partner)

    outcomes = batch_deliver(log_pks=log_pks, lease=lease)

    assert list(outcomes.values()).count(DeliveryOutcome.SENT) == 5
    assert list(outcomes.values()).count(DeliveryOutcome.RETRY) == 1
    assert len(receiver.received) == 6 and WebhookAttempt.objects.count() == 6
    given_back = WebhookLog.objects.filter(status="PENDING", retries=0, next_retry_at__lte=timezone.now())
    assert given_back.count() == len(events) - 6
    assert WebhookEndpointState.objects.get(partner=hooked_partner).consecutive_failures == 1
    assert len(events_claim_due(partner=hooked_partner)) == 1


def test_a_410_in_a_batch_fails_that_event_disables_the_endpoint_and_the_rest_waits(hooked_partner, receiver, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 1  # one lane: the attempts go one after another
    events = [record(hooked_partner) for _ in range(6)]
    gone = events[2].event_id
    receiver.decide = lambda request: Answer(410) if request.event_id == gone else None
    log_pks, lease = claimed(hooked_partner)

    outcomes = batch_deliver(log_pks=log_pks, lease=lease)

    assert [outcomes.get(e.pk) for e in events] == [DeliveryOutcome.SENT] * 2 + [DeliveryOutcome.FAILED] + [None] * 3
    assert len(receiver.received) == 3
    assert (
        list(WebhookLog.objects.filter(pk__in=[e.pk for e in events[3:]]).values_list("status", flat=True))
        == ["PENDING"] * 3
    )
    state = WebhookEndpointState.objects.get(partner=hooked_partner)
    assert state.disabled_reason == WebhookEndpointState.DisabledReason.GONE and state.consecutive_failures == 0
    assert events_claim_due(partner=hooked_partner) == []


def test_a_partner_paused_mid_batch_gets_no_further_attempt_and_its_events_wait(hooked_partner, receiver, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 2
    receiver.default = Answer(200, delay=0.3)
    events = [record(hooked_partner) for _ in range(40)]
    log_pks, lease = claimed(hooked_partner)

    def staff_pauses() -> None:
        try:
            partner_deliveries_pause(partner=hooked_partner)
        finally:
            connection.close()

    pause = threading.Timer(0.5, staff_pauses)

    pause.start()
    outcomes = batch_deliver(log_pks=log_pks, lease=lease)
    pause.join()

    sent = list(outcomes.values()).count(DeliveryOutcome.SENT)
    assert 2 <= sent <= 12 and len(receiver.received) == sent
    waiting = WebhookLog.objects.filter(status="PENDING", next_retry_at__lte=timezone.now())
    assert waiting.count() == len(events) - sent
    assert events_claim_due(partner=hooked_partner) == []


def test_attempts_that_could_outlive_the_lease_are_not_started_and_a_dispatch_takes_them(
    hooked_partner, receiver, settings, clean_redis, limits_redis
):
    # A lease of just the timeout plus the record margin leaves time for each lane's first attempt
    # only (cut short by the milliseconds of the claim).
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 2
    settings.WEBHOOK_CLAIM_LEASE_SECONDS = 6.0
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    events = [record(hooked_partner) for _ in range(10)]
    log_pks, lease = claimed(hooked_partner)
    clean_redis.flushdb()  # (the new events' own first messages)
    limits_redis.flushdb()  # (and the dispatch marker they set)

    outcomes = batch_deliver(log_pks=log_pks, lease=lease)

    assert list(outcomes.values()).count(DeliveryOutcome.SENT) == 2
    assert WebhookLog.objects.filter(status="PENDING", next_retry_at__lte=timezone.now()).count() == len(events) - 2
    dispatches = [json.loads(raw)["headers"]["task"] for raw in clean_redis.lrange("default", 0, -1)]
    assert dispatches == ["webhooks.deliver_due_webhooks"]


def test_a_batch_killed_mid_send_is_claimed_again_after_its_lease_and_sent_under_the_same_ids(
    hooked_partner, receiver, settings, monkeypatch
):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 1
    settings.WEBHOOK_CLAIM_LEASE_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS = 1.5, 0.5
    monkeypatch.setattr(delivery, "RECORD_MARGIN_SECONDS", 0.0)  # a short lease with room to send
    events = [record(hooked_partner) for _ in range(6)]
    log_pks, lease = claimed(hooked_partner)
    real_send, calls = sending._client.send, []

    def dies_on_the_fourth(**kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise SystemExit("the worker is gone")  # as a kill: nothing after this line runs
        return real_send(**kwargs)

    monkeypatch.setattr(sending._client, "send", dies_on_the_fourth)
    with pytest.raises(SystemExit):
        batch_deliver(log_pks=log_pks, lease=lease)
    monkeypatch.setattr(sending._client, "send", real_send)
    assert events_claim_due(partner=hooked_partner) == []  # still leased: nobody sends them meanwhile

    time.sleep(1.6)
    again, new_lease = claimed(hooked_partner)
    batch_deliver(log_pks=again, lease=new_lease)

    assert sorted(again) == sorted(log_pks)
    assert WebhookLog.objects.filter(status="SENT").count() == len(events)
    ids = receiver.ids()
    assert len(ids) == 3 + len(events) and set(ids) == {e.event_id for e in events}  # 3 sent twice, same ids
    assert WebhookAttempt.objects.count() == len(events)  # the killed run recorded nothing


def test_a_stale_batch_message_sends_nothing(hooked_partner, receiver):
    [record(hooked_partner) for _ in range(3)]
    log_pks, old_lease = claimed(hooked_partner)
    WebhookLog.objects.update(next_retry_at=timezone.now())  # its lease ran out …
    _, new_lease = claimed(hooked_partner)  # … and the events were claimed again

    stale = batch_deliver(log_pks=log_pks, lease=old_lease)
    live = batch_deliver(log_pks=log_pks, lease=new_lease)

    assert stale == {} and set(live.values()) == {DeliveryOutcome.SENT}
    assert len(receiver.received) == 3


def test_every_event_of_a_batch_is_signed_by_every_active_secret(hooked_partner, receiver, webhook_secret):
    new_secret = webhook_secret_rotate(partner=hooked_partner, grace=timedelta(hours=1))
    [record(hooked_partner) for _ in range(5)]
    log_pks, lease = claimed(hooked_partner)

    batch_deliver(log_pks=log_pks, lease=lease)

    assert len(receiver.received) == 5
    for request in receiver.received:
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        for secret in (webhook_secret, new_secret):
            assert Webhook(secret).verify(request.body, request.headers)["id"] == request.event_id


def test_a_drain_goes_on_to_the_partner_s_next_batches_then_hands_over_to_a_dispatch(
    hooked_partner, receiver, settings, monkeypatch, clean_redis
):
    settings.WEBHOOK_DELIVERY_BATCH_SIZE = 10
    events = [record(hooked_partner) for _ in range(35)]
    log_pks, lease = claimed(hooked_partner)

    everything = batch_deliver(log_pks=log_pks, lease=lease)
    assert len(everything) == len(events) and set(everything.values()) == {DeliveryOutcome.SENT}

    more = [record(hooked_partner) for _ in range(25)]
    monkeypatch.setattr(delivery, "DRAIN_SECONDS", 0.0)
    log_pks, lease = claimed(hooked_partner)
    one_batch = batch_deliver(log_pks=log_pks, lease=lease)

    assert len(one_batch) == 10
    assert WebhookLog.objects.filter(pk__in=[e.pk for e in more], status="PENDING").count() == 15
    dispatches = [json.loads(raw)["headers"] for raw in clean_redis.lrange("default", 0, -1)]
    assert [d["task"] for d in dispatches] == ["webhooks.deliver_due_webhooks"]


def test_the_dispatcher_queues_one_message_per_batch(hooked_partner, settings, clean_redis):
    settings.WEBHOOK_DELIVERY_BATCH_SIZE = 100
    [record(hooked_partner) for _ in range(250)]

    clean_redis.flushdb()  # (the new events' own first messages)

    queued = events_dispatch_due(partner=hooked_partner)

    [message] = [json.loads(raw)["headers"] for raw in clean_redis.lrange("webhooks", 0, -1)]
    assert queued == 100 and message["task"] == "webhooks.deliver_webhook"
    assert message["argsrepr"] == "()" and "'log_pks': [" in message["kwargsrepr"]


def test_messages_of_one_event_with_or_without_a_lease_still_run(hooked_partner, receiver):
    leased = record(hooked_partner)
    [(pk, lease)] = events_claim_due(partner=hooked_partner)
    assert pk == leased.pk
    plain = record(hooked_partner)

    assert deliver_webhook.apply(args=[plain.pk]).get() == "SENT"
    assert deliver_webhook.apply(args=[pk, lease.isoformat()]).get() == "SENT"
    assert deliver_webhook.apply(kwargs={"log_pks": [plain.pk]}).get() == "SKIPPED"  # a batch needs its lease


def test_an_attempt_whose_event_was_deleted_meanwhile_is_neither_logged_nor_counted(hooked_partner, receiver):
    event = record(hooked_partner)

    def deleted_while_in_flight(request):
        try:
            WebhookLog.objects.filter(event_id=request.event_id).delete()
        finally:
            connection.close()
        return Answer(500)

    receiver.decide = deleted_while_in_flight
    log_pks, lease = claimed(hooked_partner)

    outcomes = batch_deliver(log_pks=log_pks, lease=lease)

    assert outcomes == {} and receiver.ids() == [event.event_id]
    assert WebhookAttempt.objects.count() == 0
    assert not WebhookEndpointState.objects.filter(partner=hooked_partner, consecutive_failures__gt=0).exists()
