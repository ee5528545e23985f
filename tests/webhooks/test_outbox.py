"""Event rows are written only with the change they report, with the envelope of webhooks.md."""

import json

import pytest
import redis
from django.conf import settings
from django.db import transaction

from tests.webhooks.conftest import make_order, record
from webhooks.dispatch import events_dispatch_due
from webhooks.models import WebhookLog
from webhooks.outbox import event_record

pytestmark = pytest.mark.django_db


def test_a_rolled_back_transaction_leaves_no_event_and_sends_nothing(hooked_partner, receiver):
    with pytest.raises(RuntimeError), transaction.atomic():
        record(hooked_partner)
        raise RuntimeError("the change failed")

    assert WebhookLog.objects.count() == 0
    assert events_dispatch_due() == 0
    assert receiver.received == []


def test_the_body_is_the_envelope_serialised_once(hooked_partner):
    order = make_order(hooked_partner, "T2M123456")

    event = event_record(
        partner=hooked_partner,
        event_type="ORDER_FULFILLED",
        order_pk=order.pk,
        data={"orderId": "T2M123456", "metadata": {"campaign": "DEC-PROMO"}},
    )

    envelope = json.loads(event.body)
    assert set(envelope) == {"id", "type", "createdAt", "partnerId", "data"}
    assert envelope["id"] == event.event_id and event.event_id.startswith("evt_")
    assert envelope["type"] == "ORDER_FULFILLED" and envelope["partnerId"] == "ICONTECH001"
    assert envelope["createdAt"].endswith("Z")
    assert envelope["data"]["metadata"] == {"campaign": "DEC-PROMO"}
    assert event.payload == envelope and event.status == WebhookLog.Status.PENDING


def test_the_same_dedup_key_records_one_event(hooked_partner):
    key = "EXPIRY_REMINDER:1:2026-12-01:7"

    first = event_record(partner=hooked_partner, event_type="EXPIRY_REMINDER", data={"daysLeft": 7}, dedup_key=key)
    second = event_record(partner=hooked_partner, event_type="EXPIRY_REMINDER", data={"daysLeft": 7}, dedup_key=key)

    assert first is not None and second is None
    assert WebhookLog.objects.filter(dedup_key=key).count() == 1


def test_after_commit_the_delivery_is_queued_on_the_webhooks_queue(hooked_partner, django_capture_on_commit_callbacks):
    broker = redis.Redis.from_url(settings.REDIS_URL)

    with django_capture_on_commit_callbacks(execute=True):
        event = record(hooked_partner)

    messages = [json.loads(raw) for raw in broker.lrange("webhooks", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["webhooks.deliver_webhook"]
    assert messages[0]["headers"]["argsrepr"] == f"[{event.pk}]"
