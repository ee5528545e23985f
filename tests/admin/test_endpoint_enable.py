"""The partner page's endpoint health: staff see whether the webhook endpoint is healthy, failing
since when, or disabled since when and why, and enable a disabled one again (asked first, audited,
for staff who may pause deliveries); its waiting events then go out, in order per order, once each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from partners.models import WebhookSecret
from partners.services import secret_generate
from tests.admin.conftest import run_action
from tests.factories import PartnerFactory
from tests.webhooks.conftest import make_order, record, running_worker, serving_receiver, wait_until
from webhooks.controls import endpoint_disable
from webhooks.models import WebhookEndpointState, WebhookLog

Reason = WebhookEndpointState.DisabledReason


def enable_url(partner) -> str:
    return reverse("admin:partners_partner_object_action", args=[partner.pk, "enable_endpoint"])


def audit_messages(partner) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=str(partner.pk)).order_by("pk").values_list("change_message", flat=True)
    )


@pytest.fixture
def receiver():
    with serving_receiver() as receiver:
        yield receiver


@pytest.fixture
def hooked_partner(partner, receiver):
    partner.webhook_url = receiver.url
    partner.save()
    WebhookSecret.objects.create(partner=partner, secret=secret_generate())
    return partner


@pytest.mark.django_db
def test_the_partner_page_shows_why_and_since_when_the_endpoint_is_disabled_and_the_enable_button(ops, partner):
    disabled_at = timezone.now() - timedelta(days=1)
    endpoint_disable(partner=partner, reason=Reason.GONE, now=disabled_at)

    page = ops.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()

    when = f"{timezone.localtime(disabled_at):%Y-%m-%d %H:%M}"
    assert f"DISABLED since {when}" in page and "because the endpoint answered 410 Gone" in page
    assert enable_url(partner) in page and "Enable endpoint" in page


@pytest.mark.django_db
def test_the_partner_list_shows_each_endpoint_s_health(support, partner):
    failing = PartnerFactory(partner_id="FAILING01", name="Failing")
    since = timezone.now() - timedelta(hours=3)
    WebhookEndpointState.objects.create(partner=failing, consecutive_failures=4, failing_since=since)
    gone = PartnerFactory(partner_id="GONE01", name="Gone")
    endpoint_disable(partner=gone, reason=Reason.FAILING, now=timezone.now())

    page = support.get(reverse("admin:partners_partner_changelist")).content.decode()

    assert f"failing since {timezone.localtime(since):%Y-%m-%d %H:%M}" in page and "4 failures in a row" in page
    assert "DISABLED since" in page and "every attempt failed for WEBHOOK_DISABLE_AFTER_DAYS" in page
    assert "healthy" in page  # the default partner, which never failed


@pytest.mark.django_db
def test_ops_enables_a_disabled_endpoint_after_confirming_and_it_is_audited(ops, partner):
    endpoint_disable(partner=partner, reason=Reason.GONE, now=timezone.now())
    WebhookEndpointState.objects.filter(partner=partner).update(failing_since=timezone.now() - timedelta(days=2))

    confirm = ops.get(enable_url(partner))
    still_disabled = WebhookEndpointState.objects.get(partner=partner).is_disabled
    done = ops.post(enable_url(partner), {"post": "yes"})

    state = WebhookEndpointState.objects.get(partner=partner)
    assert "Yes, enable" in confirm.content.decode() and still_disabled
    assert done.status_code == 302
    assert (state.disabled_at, state.disabled_reason, state.failing_since) == (None, "", None)
    assert audit_messages(partner) == ["Enabled the webhook endpoint"]


@pytest.mark.django_db
def test_enabling_an_endpoint_that_is_not_disabled_changes_and_audits_nothing(ops, partner):
    run_action(ops, "partners_partner", "enable_endpoint", [partner], confirm=True)

    assert audit_messages(partner) == []
    assert not WebhookEndpointState.objects.filter(partner=partner, disabled_at__isnull=False).exists()


@pytest.mark.django_db
def test_support_may_not_enable_an_endpoint(support, partner):
    endpoint_disable(partner=partner, reason=Reason.GONE, now=timezone.now())

    page = support.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()
    response = support.post(enable_url(partner), {"post": "yes"})

    assert enable_url(partner) not in page
    assert response.status_code == 403
    assert WebhookEndpointState.objects.get(partner=partner).is_disabled


@pytest.mark.django_db(transaction=True)
def test_enabled_through_the_admin_the_waiting_events_go_out_in_order_per_order_once_each(
    ops, hooked_partner, receiver
):
    endpoint_disable(partner=hooked_partner, reason=Reason.GONE, now=timezone.now())
    first, second = make_order(hooked_partner), make_order(hooked_partner)
    with transaction.atomic():
        events = [
            record(hooked_partner, "ORDER_FULFILLED", first),
            record(hooked_partner, "ORDER_FULFILLED", second),
            record(hooked_partner, "EXPIRY_REMINDER", first),
            record(hooked_partner, "EXPIRY_REMINDER", second),
            record(hooked_partner, "SUBSCRIPTION_EXPIRED", first),
        ]

    with running_worker():
        waited = list(WebhookLog.objects.order_by("pk").values_list("status", flat=True))
        ops.post(enable_url(hooked_partner), {"post": "yes"})
        wait_until(lambda: WebhookLog.objects.filter(status="SENT").count() == len(events), timeout=20)

    received = receiver.ids()
    assert waited == ["PENDING"] * len(events)
    assert sorted(received) == sorted(e.event_id for e in events)  # each exactly once
    for order in (first, second):
        of_order = [e.event_id for e in events if e.order_id == order.pk]
        assert [event_id for event_id in received if event_id in of_order] == of_order
    assert audit_messages(hooked_partner) == ["Enabled the webhook endpoint"]
