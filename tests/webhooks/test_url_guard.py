"""The production guard: https only, and no loopback, private or link-local targets."""

import pytest

from tests.webhooks.conftest import record
from webhooks.client import UrlRefused, webhook_url_check
from webhooks.delivery import DeliveryOutcome, event_deliver
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def test_a_loopback_url_is_refused_as_an_attempt_error_when_the_guard_is_on(hooked_partner, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    event = record(hooked_partner)

    outcome = event_deliver(log_pk=event.pk)

    event.refresh_from_db()
    assert outcome == DeliveryOutcome.RETRY and event.status == WebhookLog.Status.PENDING
    assert event.attempts.get().error.startswith("refused:")
    assert receiver.received == []


def test_the_same_url_is_delivered_when_private_urls_are_allowed(hooked_partner, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    event = record(hooked_partner)

    assert event_deliver(log_pk=event.pk) == DeliveryOutcome.SENT
    assert receiver.ids() == [event.event_id]


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # public, but not https
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.9/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "ftp://93.184.216.34/hook",
        "",
    ],
)
def test_non_public_or_non_https_urls_are_refused_in_production(url):
    with pytest.raises(UrlRefused):
        webhook_url_check(url, allow_private=False)


@pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "https://[2606:2800:220:1::1]:8443/hook"])
def test_public_https_urls_pass_the_guard(url):
    webhook_url_check(url, allow_private=False)
