"""Staff alerts (webhooks.md, "Endpoint health and alerts"): each condition, mailed to ADMINS at most
once an hour per condition, never when the cache is down, and shown as a banner on the admin overview."""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from core.redis_roles import limits
from integrations.zoho.auth import AUTH_FAILING_SINCE_KEY, auth_backoff_record
from integrations.zoho.budget import zoho_budget
from integrations.zoho.errors import ZohoAuthError
from orders.models import Order
from partners.services import api_key_create
from t2mobile_portal.alerts import active_alerts, staff_alerts_send
from t2mobile_portal.celery import app
from t2mobile_portal.tasks import send_staff_alerts
from tests.admin.conftest import staff_client
from tests.conftest import caches_on
from tests.factories import OrderFactory, PartnerFactory, WebhookSecretFactory
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog

pytestmark = pytest.mark.django_db

ADMINS = [("Ops", "ops@example.com")]
REDIS_DOWN = caches_on("redis://127.0.0.1:1/0", timeout=0.2)


@pytest.fixture(autouse=True)
def admins(settings):
    settings.ADMINS = ADMINS


def dead_letters(partner, count: int, *, attempted_at=None) -> None:
    """``count`` FAILED events of ``partner``, each with one attempt at ``attempted_at`` (default now)."""
    logs = WebhookLog.objects.bulk_create(
        WebhookLog(
            event_id=f"evt_dead_{partner.partner_id}_{n}",
            partner=partner,
            event_type=WebhookLog.EventType.ORDER_FULFILLED,
            payload={"data": {"customerEmail": "ada.dead@example.com", "customerPhone": "+2348039990000"}},
            body="{}",
            status=WebhookLog.Status.FAILED,
            retries=9,
        )
        for n in range(count)
    )
    when = attempted_at or timezone.now()
    WebhookAttempt.objects.bulk_create(
        WebhookAttempt(log=log, attempted_at=when, status_code=500, error="", response_excerpt="down") for log in logs
    )


def stuck_order(partner, *, age=timedelta(hours=2), **fields) -> Order:
    order = OrderFactory(partner=partner, status=Order.Status.PROCESSING, **fields)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - age, updated_at=timezone.now() - age)
    return order


def endpoint_disabled(partner, reason=WebhookEndpointState.DisabledReason.GONE) -> None:
    """The partner's endpoint disabled as the delivery code leaves it (``disabled_at``, ``disabled_reason``)."""
    WebhookEndpointState.objects.update_or_create(
        partner=partner, defaults={"disabled_at": timezone.now(), "disabled_reason": reason}
    )


def zoho_refusing_for(minutes: float) -> None:
    """Zoho refuses our credentials (as the client records it), since ``minutes`` ago."""
    auth_backoff_record(ZohoAuthError("token refresh failed: invalid_client"))
    limits.set(AUTH_FAILING_SINCE_KEY, time.time() - minutes * 60, timeout=None)


def run_task_twice() -> list[dict]:
    return [send_staff_alerts.apply(throw=True).result for _ in range(2)]


# --- The throttle -----------------------------------------------------------------------------------


def test_500_dead_letters_in_the_last_hour_are_one_mail_however_often_the_task_runs(partner):
    dead_letters(partner, 500)

    first, second = run_task_twice()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com"]
    assert "500 webhook event(s) dead-lettered in the last hour" in message.subject
    assert f"{partner.partner_id}: 500" in message.body
    assert first["mailed"] == ["dead-letters"]
    assert second == {"active": ["dead-letters"], "mailed": [], "alreadyMailed": ["dead-letters"]}


def test_nothing_active_sends_no_mail(partner):
    stuck_order(partner, age=timedelta(minutes=30))  # PROCESSING, but not for an hour yet
    dead_letters(partner, 3, attempted_at=timezone.now() - timedelta(hours=2))  # dead-lettered earlier

    result = staff_alerts_send()

    assert mail.outbox == []
    assert result == {"active": [], "mailed": [], "alreadyMailed": []}


def test_a_second_run_within_the_hour_sends_nothing_and_the_mark_lasts_an_hour(partner, limits_redis):
    stuck_order(partner)
    staff_alerts_send()

    result = staff_alerts_send()

    assert len(mail.outbox) == 1
    assert result["alreadyMailed"] == ["orders-stuck"]
    assert 3500 < limits_redis.ttl("t2m:1:alerts:mailed:orders-stuck") <= 3600


def test_a_condition_that_clears_and_returns_within_the_hour_is_not_mailed_again(partner):
    order = stuck_order(partner)
    staff_alerts_send()
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FULFILLED)
    assert staff_alerts_send()["active"] == []

    stuck_order(partner)
    result = staff_alerts_send()

    assert result["active"] == ["orders-stuck"] and result["mailed"] == []
    assert len(mail.outbox) == 1


def test_each_condition_is_mailed_on_its_own(partner):
    stuck_order(partner)
    dead_letters(partner, 2)

    staff_alerts_send()

    assert sorted(message.subject for message in mail.outbox) == [
        "[T2Mobile gateway] 1 order(s) PROCESSING for over an hour",
        "[T2Mobile gateway] 2 webhook event(s) dead-lettered in the last hour",
    ]


def test_cache_unreachable_mails_nothing_and_raises_nothing(partner):
    stuck_order(partner)

    with override_settings(CACHES=REDIS_DOWN):
        result = send_staff_alerts.apply(throw=True).result

    assert mail.outbox == []
    assert result["active"] == ["orders-stuck"] and result["mailed"] == [] and result["cacheUnreachable"]


def test_without_admins_nothing_is_mailed_and_nothing_is_marked(partner, settings):
    settings.ADMINS = []
    stuck_order(partner)
    staff_alerts_send()
    settings.ADMINS = ADMINS

    result = staff_alerts_send()

    assert result["mailed"] == ["orders-stuck"] and len(mail.outbox) == 1


# --- The conditions ---------------------------------------------------------------------------------


def keys() -> list[str]:
    return [alert.key for alert in active_alerts()]


def test_a_disabled_endpoint_is_an_alert_per_partner(partner):
    other = PartnerFactory(partner_id="OTHERPARTNER")
    endpoint_disabled(partner, WebhookEndpointState.DisabledReason.GONE)
    endpoint_disabled(other, WebhookEndpointState.DisabledReason.FAILING)
    WebhookEndpointState.objects.update_or_create(partner=PartnerFactory(), defaults={"consecutive_failures": 4})

    alerts = active_alerts()

    expected = [f"endpoint-disabled:{partner.partner_id}", "endpoint-disabled:OTHERPARTNER"]
    assert [alert.key for alert in alerts] == expected
    assert "410 Gone" in alerts[0].body
    assert alerts[1].url == reverse("admin:partners_partner_change", args=[other.pk])


def test_orders_processing_for_over_an_hour_are_one_alert_with_count_and_oldest(partner):
    oldest = stuck_order(partner, age=timedelta(hours=5))
    stuck_order(partner, age=timedelta(hours=2))
    stuck_order(partner, age=timedelta(minutes=20))

    [alert] = active_alerts()

    assert alert.key == "orders-stuck"
    assert alert.subject == "2 order(s) PROCESSING for over an hour"
    assert f"the oldest, {oldest.order_id}, since" in alert.body


def test_zoho_refusing_our_credentials_for_over_15_minutes_is_an_alert(db):
    zoho_refusing_for(minutes=5)
    assert keys() == []

    zoho_refusing_for(minutes=20)

    assert keys() == ["zoho-credentials"]


def test_zoho_budget_over_80_percent_is_an_alert(db, settings):
    settings.ZOHO_RATE_LIMIT = "100000/m"
    settings.ZOHO_DAILY_LIMIT = 10
    for _ in range(7):
        with zoho_budget().call_slot():
            pass
    assert keys() == []

    for _ in range(2):
        with zoho_budget().call_slot():
            pass

    [alert] = active_alerts()
    assert alert.key == "zoho-budget"
    assert alert.subject == "Zoho API budget at 90 % today"


def test_the_mails_name_no_customer_contact_and_no_secret(partner, settings):
    settings.ZOHO_CLIENT_SECRET = "zoho-client-secret-value"
    settings.ZOHO_REFRESH_TOKEN = "1000.refresh-token-value"
    _, api_key = api_key_create(partner=partner, name="alerts")
    webhook_secret = WebhookSecretFactory(partner=partner).secret
    order = stuck_order(partner, customer_email="ada.private@example.com", customer_phone="+2348031112222")
    dead_letters(partner, 1)
    endpoint_disabled(partner)
    zoho_refusing_for(minutes=30)

    staff_alerts_send()

    assert len(mail.outbox) == 4
    text = "\n".join(f"{message.subject}\n{message.body}" for message in mail.outbox)
    for secret in (
        order.customer_email,
        order.customer_phone,
        "ada.dead@example.com",
        "+2348039990000",
        api_key,
        webhook_secret,
        "zoho-client-secret-value",
        "1000.refresh-token-value",
        "invalid_client",
        partner.webhook_url or "no-url",
    ):
        assert secret not in text
    assert order.order_id in text  # ids are fine: they are what staff look up


# --- The task, its schedule and run_task ------------------------------------------------------------------


def test_the_task_is_scheduled_every_minute_on_the_default_queue():
    entry = PeriodicTask.objects.get(task="alerts.send_staff_alerts")

    assert entry.crontab.minute == "*" and entry.crontab.hour == "*"
    assert app.amqp.router.route({}, "alerts.send_staff_alerts")["queue"].name == "default"


def test_run_task_runs_the_alerts_by_hand(partner):
    stuck_order(partner)
    out = StringIO()

    call_command("run_task", "alerts.send_staff_alerts", stdout=out)

    assert "alerts.send_staff_alerts: " in out.getvalue() and "'mailed': ['orders-stuck']" in out.getvalue()
    assert len(mail.outbox) == 1


# --- The admin overview's banner ------------------------------------------------------------------------


def test_the_admin_overview_shows_a_banner_line_per_alert(partner, django_user_model):
    superuser = staff_client(django_user_model, username="root", superuser=True)
    stuck_order(partner)
    dead_letters(partner, 3)

    page = superuser.get(reverse("admin:index")).content.decode()

    assert 'id="staff-alerts"' in page
    assert "1 order(s) PROCESSING for over an hour" in page
    assert "3 webhook event(s) dead-lettered in the last hour" in page
    assert reverse("admin:webhooks_webhooklog_changelist") + "?status__exact=FAILED" in page


def test_the_admin_overview_has_no_banner_when_nothing_is_active(django_user_model):
    superuser = staff_client(django_user_model, username="root", superuser=True)

    page = superuser.get(reverse("admin:index")).content.decode()

    assert 'id="staff-alerts"' not in page


def test_the_admin_overview_shows_the_banner_while_redis_is_down(partner, django_user_model):
    superuser = staff_client(django_user_model, username="root", superuser=True)
    stuck_order(partner)

    with override_settings(CACHES=REDIS_DOWN):
        started = time.monotonic()
        response = superuser.get(reverse("admin:index"))
        took = time.monotonic() - started

    assert response.status_code == 200
    assert "1 order(s) PROCESSING for over an hour" in response.content.decode()
    assert took < 5
