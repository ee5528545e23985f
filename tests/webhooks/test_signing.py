"""Signatures as T2Mobile verifies them: with the ``standardwebhooks`` library, or by hand for the
``hmac-sha256-hex`` scheme."""

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from partners.models import WebhookScheme, WebhookSecret
from partners.services import secret_generate, webhook_secret_rotate
from tests.webhooks.conftest import record
from webhooks.delivery import DeliveryOutcome, event_deliver

pytestmark = pytest.mark.django_db


def test_delivery_verifies_with_the_standardwebhooks_library(hooked_partner, receiver, webhook_secret):
    event = record(hooked_partner)

    assert event_deliver(log_pk=event.pk) == DeliveryOutcome.SENT

    request = receiver.received[0]
    payload = Webhook(webhook_secret).verify(request.body, request.headers)
    assert payload["id"] == event.event_id == request.headers["webhook-id"]
    assert payload["type"] == "ORDER_FULFILLED"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "IconTech-Webhooks/1"
    assert request.body == event.body.encode("utf-8")


def test_delivery_does_not_verify_with_a_wrong_secret(hooked_partner, receiver):
    event = record(hooked_partner)

    event_deliver(log_pk=event.pk)

    request = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_generate()).verify(request.body, request.headers)


def test_a_tampered_body_does_not_verify(hooked_partner, receiver, webhook_secret):
    event = record(hooked_partner)

    event_deliver(log_pk=event.pk)

    request = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_secret).verify(request.body.replace(b"FULFILLED", b"FAILED"), request.headers)


def test_during_rotation_both_the_old_and_the_new_secret_verify(hooked_partner, receiver, webhook_secret):
    new_secret = webhook_secret_rotate(partner=hooked_partner, grace=timedelta(hours=1))
    event = record(hooked_partner)

    event_deliver(log_pk=event.pk)

    request = receiver.received[0]
    assert new_secret.startswith("whsec_") and new_secret != webhook_secret
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(webhook_secret).verify(request.body, request.headers)["id"] == event.event_id
    assert Webhook(new_secret).verify(request.body, request.headers)["id"] == event.event_id


def test_after_the_grace_period_only_the_new_secret_signs(hooked_partner, receiver, webhook_secret):
    new_secret = webhook_secret_rotate(partner=hooked_partner, grace=timedelta(hours=1))
    WebhookSecret.objects.filter(secret=webhook_secret).update(expires_at=timezone.now() - timedelta(seconds=1))
    event = record(hooked_partner)

    event_deliver(log_pk=event.pk)

    request = receiver.received[0]
    assert Webhook(new_secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_secret).verify(request.body, request.headers)


def test_hmac_sha256_hex_scheme_signs_the_raw_body_with_the_secret(hooked_partner, receiver, webhook_secret):
    hooked_partner.webhook_scheme = WebhookScheme.HMAC_SHA256_HEX
    hooked_partner.save()
    event = record(hooked_partner)

    event_deliver(log_pk=event.pk)

    request = receiver.received[0]
    expected = hmac.new(webhook_secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-signature"] == f"sha256={expected}"
    assert abs(int(request.headers["x-timestamp"]) - timezone.now().timestamp()) < 5
    assert "webhook-signature" not in request.headers
