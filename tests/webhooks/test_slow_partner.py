"""One partner never holds up another, with a real Celery worker (threads), Redis and PostgreSQL: an
endpoint that sends its headers one byte a second gets each event once, each attempt cut at its
deadline before the claim's lease; it holds at most its slots of the worker's threads, and another
partner's new event goes out at once. The periodic dispatch runs every half second here (a "beat"
thread), so that a lapsed lease would be claimed again at once."""

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from partners.models import Partner, WebhookSecret
from partners.services import secret_generate
from tests.webhooks.conftest import record, running_worker, serving_receiver
from tests.webhooks.trickle import TrickleReceiver, slow_headers
from webhooks.controls import partner_ping_send
from webhooks.models import WebhookAttempt, WebhookLog
from webhooks.tasks import deliver_due_webhooks

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_MS = 2000
MARGIN_MS = 500


@pytest.fixture(autouse=True)
def short_deadline_and_lease(settings):
    # The lease just holds the 2 s attempt and the 5 s record margin (webhooks.E001).
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    settings.WEBHOOK_CLAIM_LEASE_SECONDS = 8


@contextmanager
def beat(every: float = 0.5):
    """``webhooks.deliver_due_webhooks`` every ``every`` seconds, as celery beat runs it every minute."""
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(every):
                deliver_due_webhooks()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def _pointed_at(partner: Partner, url: str) -> Partner:
    partner.webhook_url = url
    partner.save()
    WebhookSecret.objects.create(partner=partner, secret=secret_generate())
    return partner


def test_a_trickling_endpoint_gets_each_event_once_however_long_it_takes_to_answer(partner, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (60.0,)  # no retry within the test: every copy would be a duplicate
    with TrickleReceiver(slow_headers(every=1.0), give_up_after=20) as receiver:
        _pointed_at(partner, receiver.url)
        with running_worker(), beat():
            with transaction.atomic():
                event = record(partner)
            receiver.wait_for(1)
            time.sleep(10)  # longer than the 8 s lease, with a dispatch every half second

    assert receiver.ids() == [event.event_id]  # exactly one delivery
    attempt = WebhookAttempt.objects.get(log=event)
    event.refresh_from_db()
    assert attempt.error == "timeout after 2 s" and attempt.duration_ms < DEADLINE_MS + MARGIN_MS
    assert event.status == WebhookLog.Status.PENDING and event.retries == 1
    assert event.next_retry_at > timezone.now() + timedelta(seconds=40)


def test_a_trickling_partner_holds_at_most_its_slots_and_another_partner_s_event_goes_out_at_once(partner, settings):
    # The worker has 4 threads and a partner may hold 3. Six PINGs (which never make an endpoint
    # failing, so all of them may be in flight) go to an endpoint that sends a header byte a second,
    # and are retried every half second; the other partner's event comes once a lease has lapsed.
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 3
    settings.WEBHOOK_RETRY_SCHEDULE = (0.5,) * 9
    with (
        TrickleReceiver(slow_headers(every=1.0), give_up_after=30) as trickling,
        serving_receiver() as other_receiver,
    ):
        _pointed_at(partner, trickling.url)
        other = Partner.objects.create(partner_id="OTHER01", name="Other", prefix="OTH")
        _pointed_at(other, other_receiver.url)
        with running_worker(), beat():
            pings = [partner_ping_send(partner=partner) for _ in range(6)]
            time.sleep(9)  # past the first attempts' lease (8 s)

            started = time.monotonic()
            with transaction.atomic():
                fulfilled = record(other)
            other_receiver.wait_for(1, timeout=15)
            waited = time.monotonic() - started
            most_at_once = trickling.most_open_at_once

    durations = list(WebhookAttempt.objects.filter(log__in=pings).values_list("duration_ms", flat=True))
    assert waited < 5.0, waited
    assert other_receiver.ids() == [fulfilled.event_id]
    assert most_at_once <= 3
    assert durations and max(durations) < DEADLINE_MS + MARGIN_MS, durations
