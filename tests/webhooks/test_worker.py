"""End to end with a real Celery worker, Redis and PostgreSQL: retries, lost broker messages,
concurrent sweeps, ordering, pause and resume. Time is compressed through settings."""

import threading
import time

import pytest
from django.db import connection, transaction

from partners.models import Partner, WebhookSecret
from partners.services import secret_generate
from tests.webhooks.conftest import Answer, Receiver, make_order, record, running_worker, wait_until
from webhooks.controls import partner_deliveries_pause, partner_deliveries_resume
from webhooks.models import WebhookLog
from webhooks.tasks import deliver_due_webhooks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_schedule(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0.2, 0.2, 0.2)


def _status(event) -> str:
    return WebhookLog.objects.values_list("status", flat=True).get(pk=event.pk)


def test_fails_twice_then_succeeds_delivers_the_same_event_three_times(hooked_partner, receiver, webhook_worker):
    receiver.script = [Answer(500), Answer(503)]

    with transaction.atomic():
        event = record(hooked_partner)

    wait_until(lambda: _status(event) == "SENT")
    event.refresh_from_db()
    assert receiver.ids() == [event.event_id] * 3
    assert [a.status_code for a in event.attempts.all()] == [500, 503, 200]
    assert event.retries == 2


def test_events_survive_a_flushed_broker_and_two_sweeps_at_once_send_each_once(hooked_partner, receiver, clean_redis):
    events = [record(hooked_partner) for _ in range(30)]  # each queued a delivery on commit
    clean_redis.flushdb()  # the broker loses every queued message
    barrier = threading.Barrier(2)

    def sweep() -> None:
        try:
            barrier.wait()
            deliver_due_webhooks()
        finally:
            connection.close()

    with running_worker():
        sweeps = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in sweeps:
            thread.start()
        for thread in sweeps:
            thread.join(30)
        wait_until(lambda: WebhookLog.objects.filter(status="SENT").count() == len(events), timeout=20)

    assert sorted(receiver.ids()) == sorted(e.event_id for e in events)  # each exactly once
    assert all(e.attempts.count() == 1 for e in events)


def test_an_order_s_later_event_never_overtakes_an_earlier_one_being_retried(hooked_partner, receiver, webhook_worker):
    order = make_order(hooked_partner)
    receiver.script = [Answer(500)]

    with transaction.atomic():
        fulfilled = record(hooked_partner, "ORDER_FULFILLED", order)
        reminder = record(hooked_partner, "EXPIRY_REMINDER", order)
        expired = record(hooked_partner, "SUBSCRIPTION_EXPIRED", order)

    wait_until(lambda: _status(expired) == "SENT")
    assert receiver.ids() == [fulfilled.event_id, fulfilled.event_id, reminder.event_id, expired.event_id]


def test_a_paused_partner_s_events_wait_and_go_out_in_order_when_resumed(hooked_partner, receiver, webhook_worker):
    partner_deliveries_pause(partner=hooked_partner)
    order = make_order(hooked_partner)
    with transaction.atomic():
        events = [record(hooked_partner, kind, order) for kind in ("ORDER_FULFILLED", "EXPIRY_REMINDER")]
    deliver_due_webhooks()

    time.sleep(1.0)  # the worker had time to send, had it been allowed to
    held = (receiver.ids(), list(WebhookLog.objects.values_list("status", flat=True)))
    partner_deliveries_resume(partner=hooked_partner)

    wait_until(lambda: _status(events[-1]) == "SENT")
    assert held == ([], ["PENDING", "PENDING"])
    assert receiver.ids() == [e.event_id for e in events]


def test_a_burst_larger_than_a_batch_drains_without_the_periodic_sweep(
    hooked_partner, receiver, webhook_worker, settings
):
    settings.WEBHOOK_DISPATCH_BATCH_SIZE = 20

    with transaction.atomic():
        events = [record(hooked_partner) for _ in range(150)]

    wait_until(lambda: WebhookLog.objects.filter(status="SENT").count() == len(events), timeout=30)
    assert sorted(receiver.ids()) == sorted(e.event_id for e in events)


def test_an_endpoint_that_starts_hanging_never_holds_every_thread(hooked_partner, receiver, webhook_worker, settings):
    # The worker has 4 threads; a partner may hold 2 of them. Its endpoint starts hanging (3 s
    # timeout here) while it is still known as healthy, and 10 new events go to it at once.
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 2
    settings.WEBHOOK_TIMEOUT_SECONDS = 3
    receiver.default = Answer(delay=5)
    other_receiver = Receiver()
    other_receiver._thread.start()
    try:
        other = Partner.objects.create(partner_id="OTHER01", name="Other", webhook_url=other_receiver.url)
        WebhookSecret.objects.create(partner=other, secret=secret_generate())
        with transaction.atomic():
            for _ in range(10):
                record(hooked_partner)
        receiver.wait_for(1)
        time.sleep(0.3)  # the hanging partner's first attempts are in flight

        started = time.monotonic()
        with transaction.atomic():
            others = [record(other) for _ in range(3)]
        other_receiver.wait_for(3, timeout=10)
        waited = time.monotonic() - started
        in_flight_to_the_hanging_one = len(receiver.received)
    finally:
        other_receiver.server.shutdown()
        other_receiver.server.server_close()

    # The other partner is served by the free threads at once, not after the 3 s timeouts.
    assert waited < 2.0, waited
    assert sorted(other_receiver.ids()) == sorted(e.event_id for e in others)
    assert in_flight_to_the_hanging_one <= 2
