"""Claims: two dispatchers never take the same row; a failing endpoint gets one attempt at a time."""

import json
import threading
import time

import pytest
from django.db import connection, transaction

from partners.models import Partner, WebhookSecret
from partners.services import secret_generate
from tests.webhooks.conftest import Answer, record
from webhooks import outbox
from webhooks.delivery import DeliveryOutcome, event_deliver
from webhooks.dispatch import events_claim_due, events_dispatch_due
from webhooks.models import WebhookEndpointState
from webhooks.outbox import DIRECT_ENQUEUE_PER_SECOND


@pytest.mark.django_db(transaction=True)
def test_two_claimers_at_once_take_each_due_event_exactly_once(hooked_partner):
    events = [record(hooked_partner) for _ in range(60)]
    barrier = threading.Barrier(2)
    results: list[list] = [[], []]

    def claim(slot: int) -> None:
        try:
            barrier.wait()
            while batch := events_claim_due(partner=hooked_partner, limit=5):
                results[slot].extend(pk for pk, _ in batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    claimed = results[0] + results[1]
    assert sorted(claimed) == sorted(e.pk for e in events)
    assert results[0] and results[1], "both claimers should have worked"


@pytest.mark.django_db
def test_a_failing_endpoint_is_given_one_attempt_at_a_time(hooked_partner, receiver):
    receiver.default = Answer(503)
    first, *others = [record(hooked_partner) for _ in range(5)]
    assert event_deliver(log_pk=first.pk) == DeliveryOutcome.RETRY  # the endpoint is now failing

    one = events_claim_due(partner=hooked_partner)
    while_busy = events_claim_due(partner=hooked_partner)
    direct_while_busy = event_deliver(log_pk=others[-1].pk)

    assert len(one) == 1 and while_busy == [] and direct_while_busy == DeliveryOutcome.SKIPPED
    assert WebhookEndpointState.objects.get(partner=hooked_partner).consecutive_failures == 1


@pytest.mark.django_db
def test_the_next_attempt_goes_once_the_one_in_flight_is_done(hooked_partner, receiver):
    receiver.default = Answer(503)
    first, *others = [record(hooked_partner) for _ in range(3)]
    event_deliver(log_pk=first.pk)
    [(pk, lease)] = events_claim_due(partner=hooked_partner)

    event_deliver(log_pk=pk, lease=lease)

    assert len(events_claim_due(partner=hooked_partner)) == 1


@pytest.mark.django_db
def test_a_dead_endpoint_does_not_hold_back_another_partners_events(hooked_partner, receiver):
    receiver.default = Answer(500)
    dead = [record(hooked_partner) for _ in range(20)]
    event_deliver(log_pk=dead[0].pk)
    other = Partner.objects.create(partner_id="OTHER001", name="Other", webhook_url=receiver.url)
    WebhookSecret.objects.create(partner=other, secret=secret_generate())
    healthy = [record(other) for _ in range(3)]

    dead_claims = events_claim_due(partner=hooked_partner)
    healthy_claims = events_claim_due(partner=other)

    assert len(dead_claims) == 1
    assert sorted(pk for pk, _ in healthy_claims) == sorted(e.pk for e in healthy)


@pytest.mark.django_db
def test_a_success_ends_the_failing_state(hooked_partner, receiver):
    receiver.script = [Answer(500)]
    first, second, third = [record(hooked_partner) for _ in range(3)]
    event_deliver(log_pk=first.pk)

    assert event_deliver(log_pk=second.pk) == DeliveryOutcome.SENT

    assert WebhookEndpointState.objects.get(partner=hooked_partner).consecutive_failures == 0
    assert len(events_claim_due(partner=hooked_partner)) == 1  # only `third` is due; no slot limit


@pytest.mark.django_db
def test_new_events_of_a_failing_endpoint_are_left_to_the_dispatcher(
    hooked_partner, receiver, clean_redis, django_capture_on_commit_callbacks
):
    receiver.default = Answer(500)
    event_deliver(log_pk=record(hooked_partner).pk)  # the endpoint is now failing

    with django_capture_on_commit_callbacks(execute=True):
        waiting = record(hooked_partner)

    assert clean_redis.llen("webhooks") == 0
    assert [pk for pk, _ in events_claim_due(partner=hooked_partner)] == [waiting.pk]


@pytest.mark.django_db
def test_a_healthy_endpoint_has_at_most_one_batch_of_claims_outstanding(hooked_partner, settings):
    settings.WEBHOOK_DISPATCH_BATCH_SIZE = 10
    for _ in range(25):
        record(hooked_partner)

    first = events_claim_due(partner=hooked_partner)
    second = events_claim_due(partner=hooked_partner)

    assert len(first) == 10 and second == []


@pytest.mark.django_db
def test_a_burst_of_new_events_is_queued_partly_one_by_one_and_the_rest_by_one_dispatch(
    hooked_partner, clean_redis, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for _ in range(120):
            record(hooked_partner)
        started = time.monotonic()  # the on-commit hooks run on leaving the block
    # The seconds of the budget's clock (time.monotonic, whole seconds) that the hooks ran in.
    seconds = int(time.monotonic()) - int(started) + 1

    one_by_one = clean_redis.llen("webhooks")
    dispatches = [json.loads(raw)["headers"] for raw in clean_redis.lrange("default", 0, -1)]
    # DIRECT_ENQUEUE_PER_SECOND a second are queued on their own (more if the clock ticked meanwhile).
    assert DIRECT_ENQUEUE_PER_SECOND <= one_by_one <= min(120, seconds * DIRECT_ENQUEUE_PER_SECOND)
    assert one_by_one == 120 or 1 <= len(dispatches) <= seconds
    assert {(d["task"], d["kwargsrepr"]) for d in dispatches} == {
        ("webhooks.deliver_due_webhooks", f"{{'partner_pk': {hooked_partner.pk}}}")
    }


@pytest.mark.django_db
def test_an_event_over_the_budget_committed_after_the_dispatch_claimed_gets_a_dispatch_of_its_own(
    hooked_partner, clean_redis, django_capture_on_commit_callbacks, monkeypatch
):
    class OverBudget:  # the partner's events of this second are past DIRECT_ENQUEUE_PER_SECOND
        def take(self, partner_pk: int) -> bool:
            return False

    monkeypatch.setattr(outbox, "_direct_enqueue_budget", OverBudget())

    def dispatches() -> list[dict]:
        return [json.loads(raw)["headers"] for raw in clean_redis.lrange("default", 0, -1)]

    with django_capture_on_commit_callbacks(execute=True):
        first = record(hooked_partner)
    assert len(dispatches()) == 1
    clean_redis.delete("default")
    events_dispatch_due(partner=hooked_partner)  # that dispatch runs and claims the first event

    # An event of the same second commits after that claim: it asks for, and gets, a dispatch
    with django_capture_on_commit_callbacks(execute=True):
        second = record(hooked_partner)
    [dispatch] = dispatches()
    assert dispatch["task"] == "webhooks.deliver_due_webhooks"
    claimed = events_claim_due(partner=hooked_partner)
    assert [pk for pk, _ in claimed] == [second.pk] and first.pk != second.pk
