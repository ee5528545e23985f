"""Partners, API keys, signing secrets and webhook logs in the admin: secrets are shown once, every
change asks first and is audited, logs filter by status, type and partner and resend in bulk."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from partners.models import ApiKey, Partner, WebhookSecret
from partners.services import api_key_create, api_key_hash
from tests.admin.conftest import make_event, make_order, run_action
from tests.factories import PartnerFactory, WebhookSecretFactory
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def new_secret_on(page: str, prefix: str) -> str:
    start = page.index(f'value="{prefix}')
    return page[start + len('value="') : page.index('"', start + len('value="'))]


def test_creating_an_api_key_asks_then_shows_the_plain_key_once(superuser, partner):
    confirm = run_action(superuser, "partners_partner", "create_api_key", [partner], confirm=False)
    created = run_action(superuser, "partners_partner", "create_api_key", [partner], confirm=True, name="ops laptop")

    page = created.content.decode()
    plain = new_secret_on(page, "t2m_live_")
    key = ApiKey.objects.get(partner=partner, name="ops laptop")
    assert "Yes, create the key" in confirm.content.decode()
    assert key.hash == api_key_hash(plain) and plain not in (key.prefix, key.hash)
    assert "no-store" in created["Cache-Control"]
    assert plain not in superuser.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()
    assert LogEntry.objects.filter(object_id=str(partner.pk), change_message__startswith="Created API key").exists()


def test_a_new_key_authenticates_against_the_partner_api(superuser, partner, product):
    created = run_action(superuser, "partners_partner", "create_api_key", [partner], confirm=True, name="")
    plain = new_secret_on(created.content.decode(), "t2m_live_")

    response = superuser.get("/t2mobile/products", HTTP_AUTHORIZATION=f"Bearer {plain}")

    assert response.status_code == 200


def test_ops_revokes_a_key_and_sees_when_each_key_was_last_used(ops, partner):
    key, _ = api_key_create(partner=partner, name="old")
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(days=2))

    partner_page = ops.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()
    run_action(ops, "partners_apikey", "revoke_keys", [key], confirm=True)

    key.refresh_from_db()
    assert key.prefix in partner_page and "Last used at" in partner_page
    assert key.revoked_at is not None
    assert LogEntry.objects.filter(object_id=str(key.pk), change_message="Revoked").exists()


def test_rotating_the_secret_shows_the_new_one_once_and_keeps_the_old_one_for_the_grace(superuser, partner):
    old = WebhookSecretFactory(partner=partner, secret="whsec_" + base64.b64encode(b"o" * 24).decode())

    confirm = run_action(superuser, "partners_partner", "rotate_webhook_secret", [partner], confirm=False)
    rotated = run_action(
        superuser, "partners_partner", "rotate_webhook_secret", [partner], confirm=True, grace_hours=48
    )

    secret = new_secret_on(rotated.content.decode(), "whsec_")
    old.refresh_from_db()
    assert 'name="grace_hours"' in confirm.content.decode()
    assert WebhookSecret.objects.filter(partner=partner, secret=secret, expires_at__isnull=True).exists()
    assert timedelta(hours=47) < old.expires_at - timezone.now() <= timedelta(hours=48)
    partner_page = superuser.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()
    assert secret not in partner_page and secret[:10] in partner_page


def test_ops_pauses_and_resumes_a_partners_deliveries(ops, partner):
    run_action(ops, "partners_partner", "pause_deliveries", [partner], confirm=True)
    paused = Partner.objects.get(pk=partner.pk).deliveries_paused
    run_action(ops, "partners_partner", "resume_deliveries", [partner], confirm=True)

    assert paused is True
    assert Partner.objects.get(pk=partner.pk).deliveries_paused is False
    assert list(
        LogEntry.objects.filter(object_id=str(partner.pk)).order_by("pk").values_list("change_message", flat=True)
    ) == ["Paused webhook deliveries", "Resumed webhook deliveries"]


def test_resend_failed_since_resends_only_that_partners_failed_events_after_the_time(ops, partner):
    other = PartnerFactory(partner_id="OTHER001", name="Other")
    recent = make_event(make_order(partner, status=Order.Status.FAILED))
    old = make_event(make_order(partner, status=Order.Status.FAILED))
    WebhookLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    elsewhere = make_event(make_order(other, status=Order.Status.FAILED))
    since = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M")

    run_action(ops, "partners_partner", "resend_failed_since", [partner], confirm=True, since=since)

    statuses = {log.pk: log.status for log in WebhookLog.objects.all()}
    assert statuses[recent.pk] == WebhookLog.Status.PENDING
    assert statuses[old.pk] == statuses[elsewhere.pk] == WebhookLog.Status.FAILED


# --- Webhook logs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"status__exact": "FAILED"}, {"failed"}),
        ({"event_type__exact": "ORDER_FULFILLED"}, {"sent"}),
        ({"partner__id__exact": "other"}, {"other"}),
    ],
)
def test_webhook_logs_filter_by_status_type_and_partner(params, expected, support, partner):
    other = PartnerFactory(partner_id="OTHER001", name="Other")
    logs = {
        "failed": make_event(make_order(partner, status=Order.Status.FAILED), status=WebhookLog.Status.FAILED),
        "sent": make_event(make_order(partner), status=WebhookLog.Status.SENT, event_type="ORDER_FULFILLED"),
        "other": make_event(make_order(other), status=WebhookLog.Status.PENDING, event_type="EXPIRY_REMINDER"),
    }
    if "partner__id__exact" in params:
        params = {"partner__id__exact": other.pk}

    response = support.get(reverse("admin:webhooks_webhooklog_changelist"), params)

    shown = {log.pk for log in response.context["cl"].result_list}
    assert shown == {logs[name].pk for name in expected}


def test_bulk_resend_asks_then_requeues_each_event_under_its_id_and_audits_it(support, partner):
    logs = [make_event(make_order(partner, status=Order.Status.FAILED)) for _ in range(3)]

    confirm = run_action(support, "webhooks_webhooklog", "resend_events", logs, confirm=False)
    unchanged = set(WebhookLog.objects.values_list("status", flat=True))
    run_action(support, "webhooks_webhooklog", "resend_events", logs, confirm=True)

    assert "Yes, resend" in confirm.content.decode() and unchanged == {WebhookLog.Status.FAILED}
    for log in logs:
        event_id = log.event_id
        log.refresh_from_db()
        assert log.status == WebhookLog.Status.PENDING and log.event_id == event_id
        assert LogEntry.objects.filter(object_id=str(log.pk), change_message="Resent").exists()


def test_webhook_log_page_shows_attempts_read_only(support, partner):
    log = make_event(make_order(partner, status=Order.Status.FAILED), attempts=(500, 503))

    response = support.get(reverse("admin:webhooks_webhooklog_change", args=[log.pk]))

    page = response.content.decode()
    assert page.count("upstream down") == 2
    assert response.context["has_change_permission"] is False
    assert 'name="attempts-0-status_code"' not in page


@pytest.mark.parametrize("url", ["http://93.184.216.34/hook", "https://10.1.2.3/hook", "https://127.0.0.1/hook"])
def test_a_webhook_url_that_is_not_public_https_is_refused_in_production(url, ops, partner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    before = partner.webhook_url

    response = post_webhook_url(ops, partner, url)

    assert response.status_code == 200 and response.context["adminform"].form.errors["webhook_url"]
    partner.refresh_from_db()
    assert partner.webhook_url == before


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:8443\\@93.184.215.14/hook", "https://user@hooks.t2mobile.example/icontech"]
)
def test_the_admin_refuses_a_url_that_parsers_read_differently(url, allow_private, ops, partner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = allow_private

    response = post_webhook_url(ops, partner, url)

    assert response.status_code == 200 and response.context["adminform"].form.errors["webhook_url"]
    partner.refresh_from_db()
    assert partner.webhook_url != url


def test_ops_changes_the_webhook_url_and_scheme(ops, partner):
    response = ops.post(
        reverse("admin:partners_partner_change", args=[partner.pk]),
        {
            "name": partner.name,
            "webhook_url": "https://hooks.t2mobile.example/icontech",
            "webhook_scheme": "hmac-sha256-hex",
            "rate_limit": "200/m",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    partner.refresh_from_db()
    assert (partner.webhook_url, partner.webhook_scheme, partner.rate_limit) == (
        "https://hooks.t2mobile.example/icontech",
        "hmac-sha256-hex",
        "200/m",
    )
    assert LogEntry.objects.filter(object_id=str(partner.pk)).exists()


def test_webhook_log_list_shows_the_last_http_status(support, partner):
    log = make_event(make_order(partner, status=Order.Status.FAILED))
    WebhookLog.objects.filter(pk=log.pk).update(response={"statusCode": 503, "body": "busy", "error": ""})

    page = support.get(reverse("admin:webhooks_webhooklog_changelist")).content.decode()

    assert '<td class="field-last_status_code">503</td>' in page


def post_webhook_url(ops, partner, url: str):
    """The partner's change form, saved with ``url`` as its webhook URL."""
    return ops.post(
        reverse("admin:partners_partner_change", args=[partner.pk]),
        {
            "name": partner.name,
            "webhook_url": url,
            "webhook_scheme": partner.webhook_scheme,
            "rate_limit": "",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
        },
    )
