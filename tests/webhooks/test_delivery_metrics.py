"""Each delivery attempt counts in ``t2m_webhook_attempts_total{partner,outcome}`` and its duration
in ``t2m_webhook_attempt_seconds``; an event that becomes FAILED in ``t2m_webhook_dead_letters_total``."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.webhooks.conftest import Answer, record
from webhooks.delivery import event_deliver

pytestmark = pytest.mark.django_db


def samples(settings) -> dict:
    settings.METRICS_TOKEN = "scrape-secret"
    body = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_attempts_are_counted_by_partner_and_outcome_class(settings, hooked_partner, receiver):
    partner = hooked_partner.partner_id
    before = samples(settings)
    receiver.script = [Answer(202), Answer(503), Answer(410)]

    for _ in range(3):
        event_deliver(log_pk=record(hooked_partner).pk)

    after = samples(settings)
    for outcome in ("2xx", "5xx", "4xx"):
        key = ("t2m_webhook_attempts_total", (("outcome", outcome), ("partner", partner)))
        assert after.get(key, 0) == before.get(key, 0) + 1, outcome
    count = ("t2m_webhook_attempt_seconds_count", ())
    assert after[count] == before.get(count, 0) + 3
    dead = ("t2m_webhook_dead_letters_total", (("partner", partner),))
    assert after.get(dead, 0) == before.get(dead, 0) + 1  # the 410


def test_an_attempt_that_runs_out_of_time_counts_as_timeout(settings, hooked_partner, receiver):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    key = ("t2m_webhook_attempts_total", (("outcome", "timeout"), ("partner", hooked_partner.partner_id)))
    before = samples(settings).get(key, 0)
    receiver.script = [Answer(200, delay=1.0)]

    event_deliver(log_pk=record(hooked_partner).pk)

    assert samples(settings).get(key, 0) == before + 1
