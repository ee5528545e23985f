"""Two nightly runs at once (a second beat, a manual re-run) send nothing twice, and two renewals
provisioned at once both extend: real threads, real PostgreSQL row locks and SKIP LOCKED."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from django.db import connection
from django.utils import timezone

from orders.models import Fulfilment, Subscription
from orders.subscriptions import expiry_reminders_send, subscriptions_expire
from tests.factories import SubscriptionFactory
from tests.orders.test_subscriptions_lifecycle import fulfil, renewal_of
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db(transaction=True)

AS_OF = datetime(2026, 12, 1, 2, 0, tzinfo=ZoneInfo("Africa/Lagos"))


def at_once(count: int, work) -> list:
    """Run ``work()`` in ``count`` threads released together; re-raise the first error."""
    barrier = threading.Barrier(count)
    results, errors = [], []

    def target():
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_overlapping_reminder_runs_send_each_reminder_once(partner, settings):
    settings.REMINDER_DAYS = [7, 1]
    subs = [SubscriptionFactory(partner=partner, expires_at=AS_OF + timedelta(minutes=30 * i + 1)) for i in range(240)]

    runs = at_once(2, lambda: expiry_reminders_send(as_of=AS_OF, batch_size=20))

    keys = Counter(WebhookLog.objects.filter(event_type="EXPIRY_REMINDER").values_list("order_id", flat=True))
    assert keys == Counter({sub.origin_order_id: 1 for sub in subs})
    assert sum(run.sent for run in runs) == 240


def test_overlapping_runs_then_next_night_send_the_seven_and_one_day_reminders_once(partner, settings):
    settings.REMINDER_DAYS = [7, 1]
    subs = [SubscriptionFactory(partner=partner, expires_at=AS_OF + timedelta(days=1, hours=12)) for _ in range(50)]

    at_once(3, lambda: expiry_reminders_send(as_of=AS_OF, batch_size=7))
    at_once(3, lambda: expiry_reminders_send(as_of=AS_OF + timedelta(days=1), batch_size=7))

    per_order = Counter(
        (log.order_id, log.payload["data"]["daysLeft"])
        for log in WebhookLog.objects.filter(event_type="EXPIRY_REMINDER")
    )
    assert per_order == Counter({(sub.origin_order_id, days): 1 for sub in subs for days in (2, 1)})


def test_overlapping_expiry_runs_expire_each_once(partner):
    subs = [SubscriptionFactory(partner=partner, expires_at=AS_OF - timedelta(minutes=i + 1)) for i in range(120)]

    runs = at_once(2, lambda: subscriptions_expire(as_of=AS_OF, batch_size=10))

    assert sum(run.expired for run in runs) == 120
    assert Subscription.objects.filter(status=Subscription.Status.EXPIRED).count() == 120
    assert Fulfilment.objects.filter(status=Fulfilment.Status.EXPIRED).count() == 120
    expired_events = Counter(
        WebhookLog.objects.filter(event_type="SUBSCRIPTION_EXPIRED").values_list("order_id", flat=True)
    )
    assert expired_events == Counter({sub.origin_order_id: 1 for sub in subs})


def test_two_renewals_provisioned_at_once_both_extend_the_subscription(partner):
    subscription = SubscriptionFactory(partner=partner, expires_at=timezone.now() + timedelta(days=5))
    renewals = iter([renewal_of(subscription.origin_order) for _ in range(2)])

    at_once(2, lambda: fulfil(next(renewals), activation_reference=subscription.activation_reference))

    expected = timezone.localtime(subscription.expires_at) + relativedelta(months=2)
    subscription.refresh_from_db()
    assert subscription.expires_at == expected
    assert WebhookLog.objects.filter(event_type="SUBSCRIPTION_RENEWED").count() == 2
