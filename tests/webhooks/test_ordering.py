"""Events of one order go out in creation order; a paused partner's events wait."""

import pytest
from django.utils import timezone

from tests.webhooks.conftest import Answer, make_order, record
from webhooks.controls import partner_deliveries_pause
from webhooks.delivery import DeliveryOutcome, event_deliver
from webhooks.dispatch import events_claim_due
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def _due_now(event):
    WebhookLog.objects.filter(pk=event.pk).update(next_retry_at=timezone.now())


def test_a_later_event_of_an_order_waits_while_an_earlier_one_is_pending(hooked_partner, receiver):
    receiver.script = [Answer(500)]
    order = make_order(hooked_partner)
    fulfilled = record(hooked_partner, "ORDER_FULFILLED", order)
    reminder = record(hooked_partner, "EXPIRY_REMINDER", order)

    first = event_deliver(log_pk=fulfilled.pk)
    held = event_deliver(log_pk=reminder.pk)
    claimed_while_held = events_claim_due(partner=hooked_partner)
    _due_now(fulfilled)
    event_deliver(log_pk=fulfilled.pk)
    last = event_deliver(log_pk=reminder.pk)

    assert (first, held, claimed_while_held, last) == (
        DeliveryOutcome.RETRY,
        DeliveryOutcome.SKIPPED,
        [],
        DeliveryOutcome.SENT,
    )
    assert receiver.ids() == [fulfilled.event_id, fulfilled.event_id, reminder.event_id]


def test_a_failed_earlier_event_no_longer_holds_the_later_ones(hooked_partner, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = ()  # the first failure is the last (a 410 would disable the endpoint)
    receiver.script = [Answer(500)]
    order = make_order(hooked_partner)
    fulfilled = record(hooked_partner, "ORDER_FULFILLED", order)
    reminder = record(hooked_partner, "EXPIRY_REMINDER", order)

    event_deliver(log_pk=fulfilled.pk)

    assert event_deliver(log_pk=reminder.pk) == DeliveryOutcome.SENT


def test_events_of_other_orders_are_not_held(hooked_partner, receiver):
    receiver.script = [Answer(500)]
    stuck = record(hooked_partner, order=make_order(hooked_partner))
    other = record(hooked_partner, order=make_order(hooked_partner))

    event_deliver(log_pk=stuck.pk)

    assert event_deliver(log_pk=other.pk) == DeliveryOutcome.SENT


def test_a_paused_partner_gets_nothing(hooked_partner, receiver):
    event = record(hooked_partner)

    partner_deliveries_pause(partner=hooked_partner)

    assert event_deliver(log_pk=event.pk) == DeliveryOutcome.SKIPPED
    assert events_claim_due(partner=hooked_partner) == []
    assert receiver.received == []
    event.refresh_from_db()
    assert event.status == WebhookLog.Status.PENDING
