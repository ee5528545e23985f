"""An attempt always ends before its claim's lease: the settings are checked at start-up
(``webhooks.E001``), and whatever the settings, the delivery cuts an attempt before the lease."""

import pytest
from django.core.checks import run_checks

from partners.models import WebhookSecret
from tests.webhooks.conftest import record
from tests.webhooks.trickle import TrickleReceiver, slow_headers
from webhooks.checks import check_attempt_fits_in_lease
from webhooks.delivery import RECORD_MARGIN_SECONDS, DeliveryOutcome, event_deliver


def test_the_default_timeout_and_lease_pass_the_check(settings):
    assert (settings.WEBHOOK_TIMEOUT_SECONDS, settings.WEBHOOK_CLAIM_LEASE_SECONDS) == (15.0, 45.0)

    assert check_attempt_fits_in_lease() == []
    assert "webhooks.E001" not in [message.id for message in run_checks()]


@pytest.mark.parametrize(("timeout", "lease"), [(15, 15), (41, 45), (0, 45)])
def test_a_lease_that_cannot_hold_an_attempt_and_its_record_is_refused_at_start_up(settings, timeout, lease):
    settings.WEBHOOK_TIMEOUT_SECONDS, settings.WEBHOOK_CLAIM_LEASE_SECONDS = timeout, lease

    errors = [message for message in run_checks() if message.id == "webhooks.E001"]

    assert len(errors) == 1 and errors[0].is_serious()
    assert "WEBHOOK_CLAIM_LEASE_SECONDS" in errors[0].msg


@pytest.mark.django_db
def test_an_attempt_is_cut_before_its_lease_even_when_the_timeout_is_longer(partner, webhook_secret, settings):
    # Misconfigured (the check above refuses it): a 15 s timeout in a 7 s lease. The attempt still
    # ends RECORD_MARGIN_SECONDS before the lease, so no other worker claims the event meanwhile.
    settings.WEBHOOK_TIMEOUT_SECONDS, settings.WEBHOOK_CLAIM_LEASE_SECONDS = 15, 7
    with TrickleReceiver(slow_headers(every=0.5)) as receiver:
        partner.webhook_url = receiver.url
        partner.save()
        WebhookSecret.objects.create(partner=partner, secret=webhook_secret)
        event = record(partner)

        outcome = event_deliver(log_pk=event.pk)

    attempt = event.attempts.get()
    allowed_ms = (7 - RECORD_MARGIN_SECONDS) * 1000
    assert outcome == DeliveryOutcome.RETRY and attempt.error.startswith("timeout after 1.9")
    assert allowed_ms - 100 <= attempt.duration_ms < allowed_ms + 300, attempt.duration_ms
    assert receiver.ids() == [event.event_id]
