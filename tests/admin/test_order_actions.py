"""Order actions: each asks first, then calls the provisioning or webhook service, and leaves an
audit entry; the order page and the stuck filter answer "where is order X and why"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from orders.models import Fulfilment, Order
from tests.admin.conftest import make_event, make_order, run_action
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def audit_messages(obj) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=str(obj.pk), content_type__model=obj._meta.model_name, action_flag=CHANGE)
        .order_by("pk")
        .values_list("change_message", flat=True)
    )


# --- Re-drive -------------------------------------------------------------------------------------


def test_redrive_shows_a_confirmation_page_and_changes_nothing_yet(support, partner):
    order = make_order(partner, status=Order.Status.FAILED, failure_reason="Zoho refused the item")

    response = run_action(support, "orders_order", "redrive_orders", [order], confirm=False)

    assert response.status_code == 200
    assert "Yes, re-drive" in response.content.decode() and order.order_id in response.content.decode()
    order.refresh_from_db()
    assert order.status == Order.Status.FAILED and audit_messages(order) == []


def test_confirmed_redrive_makes_a_failed_order_processing_and_is_audited(support, partner):
    order = make_order(partner, status=Order.Status.FAILED, failure_reason="Zoho refused the item")

    response = run_action(support, "orders_order", "redrive_orders", [order], confirm=True)

    assert response.status_code == 302
    order.refresh_from_db()
    fulfilment = Fulfilment.objects.get(order=order)
    assert order.status == Order.Status.PROCESSING and order.failure_reason == ""
    assert fulfilment.status == Fulfilment.Status.PENDING and fulfilment.attempts == 0
    assert audit_messages(order) == ["Re-drove provisioning (was FAILED)"]
    assert LogEntry.objects.get(object_id=str(order.pk)).user_id == support.user.pk


def test_redrive_of_a_fulfilled_order_is_refused_with_a_message_and_no_audit(support, partner):
    order = make_order(partner, status=Order.Status.FULFILLED)

    response = run_action(support, "orders_order", "redrive_orders", [order], confirm=True)

    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("cannot be re-driven" in m for m in messages)
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED and audit_messages(order) == []


def test_redrive_button_on_the_order_page_asks_then_acts(support, partner):
    order = make_order(partner, status=Order.Status.PROCESSING, age=timedelta(hours=1))
    page = support.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    url = reverse("admin:orders_order_object_action", args=[order.pk, "redrive_orders"])
    assert url in page

    confirm = support.get(url)
    done = support.post(url, {"post": "yes"})

    assert "Yes, re-drive" in confirm.content.decode()
    assert done.status_code == 302 and done["Location"] == reverse("admin:orders_order_change", args=[order.pk])
    assert audit_messages(order) == ["Re-drove provisioning (was PROCESSING)"]


# --- Hold, release, mark failed ------------------------------------------------------------------


def test_ops_puts_an_order_on_hold_and_releases_it(ops, partner):
    order = make_order(partner, status=Order.Status.PROCESSING)

    run_action(ops, "orders_order", "hold_orders", [order], confirm=True)
    order.refresh_from_db()
    held = order.status
    run_action(ops, "orders_order", "release_orders", [order], confirm=True)
    order.refresh_from_db()

    assert held == Order.Status.PENDING
    assert order.status == Order.Status.PROCESSING
    assert audit_messages(order) == ["Put on hold", "Released from hold"]


def test_support_cannot_put_an_order_on_hold(support, partner):
    order = make_order(partner, status=Order.Status.PROCESSING)

    run_action(support, "orders_order", "hold_orders", [order], confirm=True)

    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSING and audit_messages(order) == []


def test_mark_failed_asks_for_a_reason_on_the_confirmation_page(ops, partner):
    order = make_order(partner, status=Order.Status.PROCESSING)

    response = run_action(ops, "orders_order", "mark_orders_failed", [order], confirm=True, reason="")

    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode() and "This field is required" in response.content.decode()
    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSING


def test_mark_failed_with_a_reason_fails_the_order_and_sends_order_failed(ops, partner):
    order = make_order(partner, status=Order.Status.PROCESSING)

    run_action(
        ops,
        "orders_order",
        "mark_orders_failed",
        [order],
        confirm=True,
        reason="The customer cancelled before activation.",
    )

    order.refresh_from_db()
    event = WebhookLog.objects.get(order=order)
    assert order.status == Order.Status.FAILED
    assert order.failure_reason == "The customer cancelled before activation."
    assert event.event_type == "ORDER_FAILED" and event.payload["data"]["failureReason"] == order.failure_reason
    assert audit_messages(order) == ["Marked FAILED: The customer cancelled before activation."]


# --- Resend the failed events of orders ---------------------------------------------------------


def test_resend_failed_events_of_the_selected_orders(support, partner):
    order = make_order(partner, status=Order.Status.FAILED)
    failed = make_event(order, status=WebhookLog.Status.FAILED)
    sent = make_event(order, status=WebhookLog.Status.SENT, event_type="ORDER_FULFILLED", attempts=(200,))

    run_action(support, "orders_order", "resend_failed_events", [order], confirm=True)

    failed.refresh_from_db()
    sent.refresh_from_db()
    assert failed.status == WebhookLog.Status.PENDING and failed.retries == 0
    assert sent.status == WebhookLog.Status.SENT
    assert audit_messages(order) == ["Resent 1 FAILED webhook event(s)"]


# --- Finding an order and seeing why ------------------------------------------------------------


def test_stuck_filter_lists_old_processing_orders_and_failed_webhooks_only(support, partner):
    stuck = make_order(partner, status=Order.Status.PROCESSING, age=timedelta(minutes=20))
    fresh = make_order(partner, status=Order.Status.PROCESSING, age=timedelta(minutes=5))
    undelivered = make_order(partner, status=Order.Status.FULFILLED)
    make_event(undelivered, status=WebhookLog.Status.FAILED, event_type="ORDER_FULFILLED")
    delivered = make_order(partner, status=Order.Status.FULFILLED)
    make_event(delivered, status=WebhookLog.Status.SENT, event_type="ORDER_FULFILLED", attempts=(200,))

    response = support.get(reverse("admin:orders_order_changelist"), {"attention": "stuck"})

    shown = {order.order_id for order in response.context["cl"].result_list}
    assert shown == {stuck.order_id, undelivered.order_id}
    assert fresh.order_id not in shown


@pytest.mark.parametrize(
    "field",
    ["order_id", "customer_id", "customer_email", "customer_phone", "zoho_sales_order_id", "activation_reference"],
)
def test_search_finds_an_order_by(field, support, partner):
    wanted = make_order(
        partner, zoho_sales_order_id="SO-00042", activation_reference="ICT-ABCD-EFGH", customer_phone="+2348099990000"
    )
    make_order(partner)

    response = support.get(reverse("admin:orders_order_changelist"), {"q": getattr(wanted, field)})

    assert [order.order_id for order in response.context["cl"].result_list] == [wanted.order_id]


def test_order_page_shows_why_fulfilment_error_and_every_webhook_attempt(support, partner):
    order = make_order(partner, status=Order.Status.PROCESSING, age=timedelta(hours=2))
    Fulfilment.objects.filter(order=order).update(attempts=4, last_error="Zoho 503: service unavailable")
    event = make_event(order, status=WebhookLog.Status.FAILED, attempts=(500, 502, 410))

    page = support.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    assert "Fulfilment PENDING after 4 Zoho attempt(s)." in page
    assert "Zoho 503: service unavailable" in page
    assert event.event_id in page
    assert page.count("upstream down") == 3 and "410" in page and "502" in page
