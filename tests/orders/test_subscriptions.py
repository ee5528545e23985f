"""Subscriptions over time: renewal arithmetic, expiry reminders and expiry (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from orders.models import Fulfilment, Order, Subscription
from orders.subscriptions import expiry_reminders_send, subscription_renewal_expiry, subscriptions_expire
from tests.factories import OrderFactory, SubscriptionFactory, renewal_create
from tests.zoho_fixtures import MAIL_LITE
from webhooks.models import WebhookLog

LAGOS = ZoneInfo("Africa/Lagos")
AS_OF = datetime(2026, 12, 1, 2, 0, tzinfo=LAGOS)  # a 02:00 run, as the beat schedule starts it
DAY = timedelta(days=1)


def reminders() -> list[dict]:
    logs = WebhookLog.objects.filter(event_type=WebhookLog.EventType.EXPIRY_REMINDER).order_by("pk")
    return [log.payload["data"] for log in logs]


def reminders_of(order_id: str) -> list[int]:
    return [data["daysLeft"] for data in reminders() if data["orderId"] == order_id]


def run_reminders(as_of: datetime) -> str:
    out = StringIO()
    call_command("send_expiry_reminders", "--as-of", as_of.isoformat(), stdout=out)
    return out.getvalue()


@pytest.fixture
def thresholds_7_and_1(settings):
    settings.REMINDER_DAYS = [7, 1]


# --- Renewal arithmetic ---------------------------------------------------------------------------


class TestRenewalExpiry:
    now = datetime(2026, 1, 10, 12, 0, tzinfo=LAGOS)

    def test_jan_31_plus_one_month_is_feb_28_in_a_common_year(self):
        current = datetime(2026, 1, 31, 9, 30, tzinfo=LAGOS)

        renewed = subscription_renewal_expiry(current_expires_at=current, now=self.now, tenure="1_MONTH")

        assert renewed == datetime(2026, 2, 28, 9, 30, tzinfo=LAGOS)

    def test_jan_31_plus_one_month_is_feb_29_in_a_leap_year(self):
        current = datetime(2028, 1, 31, 9, 30, tzinfo=LAGOS)

        renewed = subscription_renewal_expiry(current_expires_at=current, now=self.now, tenure="1_MONTH")

        assert renewed == datetime(2028, 2, 29, 9, 30, tzinfo=LAGOS)

    def test_feb_29_plus_twelve_months_is_feb_28(self):
        current = datetime(2028, 2, 29, 0, 0, tzinfo=LAGOS)

        renewed = subscription_renewal_expiry(current_expires_at=current, now=self.now, tenure="12_MONTHS")

        assert renewed == datetime(2029, 2, 28, 0, 0, tzinfo=LAGOS)

    def test_month_end_is_counted_on_the_lagos_calendar_not_utc(self):
        # 00:30 on 31 January in Lagos is still 30 January in UTC.
        current = datetime(2026, 1, 31, 0, 30, tzinfo=LAGOS)

        renewed = subscription_renewal_expiry(current_expires_at=current, now=self.now, tenure="1_MONTH")

        assert renewed == datetime(2026, 2, 28, 0, 30, tzinfo=LAGOS)

    def test_active_subscription_is_extended_from_its_current_expiry(self):
        current = datetime(2026, 3, 15, 10, 0, tzinfo=LAGOS)

        renewed = subscription_renewal_expiry(current_expires_at=current, now=self.now, tenure="3_MONTHS")

        assert renewed == datetime(2026, 6, 15, 10, 0, tzinfo=LAGOS)

    def test_renewal_of_an_expired_subscription_starts_from_now(self):
        expired_long_ago = datetime(2025, 6, 1, 10, 0, tzinfo=LAGOS)

        renewed = subscription_renewal_expiry(current_expires_at=expired_long_ago, now=self.now, tenure="1_MONTH")

        assert renewed == datetime(2026, 2, 10, 12, 0, tzinfo=LAGOS)

    def test_subscription_without_expiry_starts_from_now(self):
        renewed = subscription_renewal_expiry(current_expires_at=None, now=self.now, tenure="12_MONTHS")

        assert renewed == datetime(2027, 1, 10, 12, 0, tzinfo=LAGOS)


# --- Expiry reminders -----------------------------------------------------------------------------


@pytest.mark.django_db
class TestExpiryReminders:
    def test_reminder_carries_the_subscription_and_days_left(self, partner, thresholds_7_and_1):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF + 5 * DAY, origin_order__metadata={"campaign": "X"})

        run_reminders(AS_OF)

        log = WebhookLog.objects.get(event_type=WebhookLog.EventType.EXPIRY_REMINDER)
        assert log.partner == partner
        assert log.order == sub.origin_order
        assert log.status == WebhookLog.Status.PENDING
        assert log.dedup_key == f"EXPIRY_REMINDER:{sub.origin_order_id}:{log.payload['data']['expiresAt']}:7"
        assert log.payload["data"] == {
            "orderId": sub.origin_order.order_id,
            "customerId": sub.customer_id,
            "productId": MAIL_LITE["item_id"],
            "activationReference": sub.activation_reference,
            "expiresAt": (AS_OF + 5 * DAY).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "daysLeft": 5,
            "metadata": {"campaign": "X"},
        }

    def test_seven_day_and_one_day_reminders_on_their_nights(self, partner, thresholds_7_and_1):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF + 7 * DAY + timedelta(hours=6))
        order_id = sub.origin_order.order_id

        for night in range(9):
            run_reminders(AS_OF + night * DAY)

        assert reminders_of(order_id) == [7, 1]

    def test_same_night_run_twice_sends_once(self, partner, thresholds_7_and_1):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF + 3 * DAY)

        run_reminders(AS_OF)
        out = run_reminders(AS_OF)

        assert reminders_of(sub.origin_order.order_id) == [3]
        assert "0 sent, 1 already sent" in out

    def test_missed_night_is_caught_up_on_the_next_run(self, partner, thresholds_7_and_1):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF + 7 * DAY - timedelta(hours=1))
        # The night of AS_OF (6 days 23 hours left) did not run; the next night does.

        run_reminders(AS_OF + DAY)

        assert reminders_of(sub.origin_order.order_id) == [6]

    def test_inside_the_last_window_only_the_smallest_threshold_is_sent(self, partner, thresholds_7_and_1):
        # Never reminded at 7 days (e.g. several nights missed): a stale 7-day reminder on top of the
        # 1-day one would only repeat it.
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF + timedelta(hours=20))

        run_reminders(AS_OF)
        run_reminders(AS_OF + timedelta(hours=1))

        assert reminders_of(sub.origin_order.order_id) == [1]
        assert WebhookLog.objects.get().dedup_key.endswith(":1")

    def test_default_single_threshold_of_seven_days(self, partner, settings):
        settings.REMINDER_DAYS = [7]
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF + DAY)

        run_reminders(AS_OF)
        run_reminders(AS_OF + timedelta(hours=12))

        assert reminders_of(sub.origin_order.order_id) == [1]

    def test_no_reminder_for_an_expired_subscription(self, partner, thresholds_7_and_1):
        SubscriptionFactory(partner=partner, expires_at=AS_OF + 2 * DAY, status=Subscription.Status.EXPIRED)

        run_reminders(AS_OF)

        assert reminders() == []

    @pytest.mark.parametrize("status", [Fulfilment.Status.ACTIVE, Fulfilment.Status.FAILED, Fulfilment.Status.PENDING])
    def test_reminders_read_the_subscription_not_the_fulfilments(self, partner, thresholds_7_and_1, status):
        # A fulfilment due in two days, of an order that belongs to no subscription.
        OrderFactory(
            partner=partner,
            status=Order.Status.FULFILLED,
            fulfilment__status=status,
            fulfilment__expires_at=AS_OF + 2 * DAY,
        )

        run_reminders(AS_OF)

        assert reminders() == []

    def test_no_reminder_outside_the_window(self, partner, thresholds_7_and_1):
        SubscriptionFactory(partner=partner, expires_at=AS_OF + 7 * DAY + timedelta(minutes=1))
        SubscriptionFactory(partner=partner, expires_at=AS_OF)  # already due to expire, not to remind
        SubscriptionFactory(partner=partner, expires_at=AS_OF - DAY)

        run_reminders(AS_OF)

        assert reminders() == []

    def test_renewed_subscription_is_reminded_again_for_its_new_date(self, partner, thresholds_7_and_1):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF + 2 * DAY)
        run_reminders(AS_OF)
        # Renewed for a month, as provisioning does it: the subscription and the renewal's
        # fulfilment both carry the new expiry.
        new_expiry = subscription_renewal_expiry(current_expires_at=sub.expires_at, now=AS_OF, tenure="1_MONTH")
        renewal_create(subscription=sub, expires_at=new_expiry)

        run_reminders(AS_OF + DAY)  # old date would be 1 day away: nothing, it moved
        run_reminders(new_expiry - 6 * DAY)

        expiries = [data["expiresAt"][:10] for data in reminders()]
        assert reminders_of(sub.origin_order.order_id) == [2, 6]
        assert expiries == ["2026-12-03", "2027-01-03"]

    def test_renewal_order_fulfilment_is_not_reminded_separately(self, partner, thresholds_7_and_1):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF + 3 * DAY - 40 * DAY)
        renewal = renewal_create(subscription=sub, expires_at=AS_OF + 3 * DAY)

        run_reminders(AS_OF)

        assert [data["orderId"] for data in reminders()] == [sub.origin_order.order_id]
        assert renewal.webhook_logs.count() == 0

    def test_batches_cover_every_due_subscription_once(self, partner, thresholds_7_and_1):
        subs = [SubscriptionFactory(partner=partner, expires_at=AS_OF + DAY * 6) for _ in range(7)]
        subs += [SubscriptionFactory(partner=partner, expires_at=AS_OF + DAY * (1 + i) / 2) for i in range(6)]

        run = expiry_reminders_send(as_of=AS_OF, batch_size=3)

        assert run.sent == 13
        assert run.batches == 5
        assert sorted(data["orderId"] for data in reminders()) == sorted(s.origin_order.order_id for s in subs)


# --- Expiry ---------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestExpiry:
    def test_active_subscription_past_expiry_becomes_expired_with_one_event(self, partner):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF - timedelta(hours=3))

        call_command("expire_subscriptions", "--as-of", AS_OF.isoformat(), stdout=open("/dev/null", "w"))
        call_command("expire_subscriptions", "--as-of", (AS_OF + DAY).isoformat(), stdout=open("/dev/null", "w"))

        sub.refresh_from_db()
        assert sub.status == Subscription.Status.EXPIRED
        assert Fulfilment.objects.get(order=sub.origin_order).status == Fulfilment.Status.EXPIRED
        log = WebhookLog.objects.get()
        assert log.event_type == WebhookLog.EventType.SUBSCRIPTION_EXPIRED
        assert log.order == sub.origin_order
        assert log.dedup_key == f"SUBSCRIPTION_EXPIRED:{sub.origin_order_id}:2026-11-30T22:00:00Z"
        assert log.payload["data"] == {
            "orderId": sub.origin_order.order_id,
            "customerId": sub.customer_id,
            "productId": MAIL_LITE["item_id"],
            "activationReference": sub.activation_reference,
            "expiresAt": "2026-11-30T22:00:00Z",
            "metadata": {"campaign": "DEC-PROMO"},
        }

    def test_not_yet_expired_subscriptions_and_orders_without_one_are_left_alone(self, partner):
        later = SubscriptionFactory(partner=partner, expires_at=AS_OF + timedelta(minutes=1))
        failed = OrderFactory(partner=partner, status=Order.Status.FAILED, fulfilment__expires_at=AS_OF - DAY)
        pending = OrderFactory(partner=partner, status=Order.Status.PROCESSING)

        run = subscriptions_expire(as_of=AS_OF)

        assert run.expired == 0
        later.refresh_from_db()
        assert later.status == Subscription.Status.ACTIVE
        orders = [later.origin_order_id, failed.pk, pending.pk]
        assert [f.status for f in Fulfilment.objects.filter(order__in=orders).order_by("order_id")] == [
            "ACTIVE",
            "FAILED",
            "PENDING",
        ]
        assert WebhookLog.objects.count() == 0

    def test_expiry_marks_the_subscription_and_its_last_fulfilment_expired_with_one_event(self, partner):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF - 40 * DAY)
        first = renewal_create(subscription=sub, expires_at=AS_OF - 10 * DAY)
        last = renewal_create(subscription=sub, expires_at=AS_OF - DAY, renewal_of=first)

        run = subscriptions_expire(as_of=AS_OF)

        sub.refresh_from_db()
        assert sub.status == Subscription.Status.EXPIRED
        assert Fulfilment.objects.get(order=last).status == Fulfilment.Status.EXPIRED
        # The earlier fulfilments are history: their periods and status stay as they were.
        assert Fulfilment.objects.get(order=first).status == Fulfilment.Status.ACTIVE
        assert (run.expired, run.events) == (1, 1)
        log = WebhookLog.objects.get()
        assert (log.order_id, log.payload["data"]["expiresAt"]) == (sub.origin_order_id, "2026-11-30T01:00:00Z")

    def test_many_expire_in_batches(self, partner):
        for i in range(11):
            SubscriptionFactory(partner=partner, expires_at=AS_OF - i * timedelta(hours=1))

        run = subscriptions_expire(as_of=AS_OF, batch_size=4)

        assert run.expired == 11
        assert Subscription.objects.filter(status=Subscription.Status.ACTIVE).count() == 0
        assert Fulfilment.objects.filter(status=Fulfilment.Status.ACTIVE).count() == 0
        assert WebhookLog.objects.filter(event_type="SUBSCRIPTION_EXPIRED").count() == 11

    def test_subscription_renewed_after_expiry_expires_again_with_a_new_event(self, partner):
        sub = SubscriptionFactory(partner=partner, expires_at=AS_OF - DAY)
        subscriptions_expire(as_of=AS_OF)
        # Renewed after it expired (provisioning makes it ACTIVE again, from now).
        new_expiry = subscription_renewal_expiry(current_expires_at=sub.expires_at, now=AS_OF, tenure="1_MONTH")
        renewal_create(subscription=sub, expires_at=new_expiry)

        subscriptions_expire(as_of=AS_OF + 10 * DAY)
        subscriptions_expire(as_of=new_expiry)

        expired = WebhookLog.objects.filter(event_type="SUBSCRIPTION_EXPIRED").order_by("pk")
        assert [log.payload["data"]["expiresAt"][:10] for log in expired] == ["2026-11-30", "2027-01-01"]
