# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""The order-state services staff and the sweeper use, and renewals, run in-process against the
Zoho sandbox (the worker path is covered in test_provisioning.py)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import CommandError, call_command
from django.utils import timezone

from core.times import iso_utc
from orders.management.commands import redrive_order as redrive_command
from orders.models import Fulfilment, Order
from orders.provisioning import order_provision
from orders.sweeper import orders_redrive_stalled
from orders.transitions import OrderStateError, order_hold, order_mark_failed, order_redrive, order_release
from orders.zoho_provisioner import activation_reference_derive
from tests.conftest import place_order
from tests.zoho_fixtures import zoho_sandbox  # noqa: F401
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def place(api, **overrides) -> Order:
    return Order.objects.get(order_id=place_order(api, **overrides)["orderId"])


def events(order) -> list[str]:
    return list(WebhookLog.objects.filter(order=order).order_by("pk").values_list("event_type", flat=True))


def queued_jobs(clean_redis) -> int:
    return clean_redis.llen("provisioning")


def test_mark_failed_sends_order_failed_once(api, product):
    order = place(api, orderId="T2M-MF-1")

    order_mark_failed(order=order, reason="Cancelled at the customer's request.")
    order_mark_failed(order=order, reason="again")

    order.refresh_from_db()
    assert (order.status, order.failure_reason) == ("FAILED", "Cancelled at the customer's request.")
    assert Fulfilment.objects.get(order=order).status == Fulfilment.Status.FAILED
    assert events(order) == ["ORDER_FAILED"]
    failed = WebhookLog.objects.get(order=order).payload["data"]
    assert failed["failureReason"] == "Cancelled at the customer's request."


def test_redrive_makes_a_failed_order_processing_and_queues_it(
    api, product, clean_redis, django_capture_on_commit_callbacks
):
    order = place(api, orderId="T2M-RD-1")
    order_mark_failed(order=order, reason="Zoho refused it.")
    clean_redis.delete("provisioning")

    with django_capture_on_commit_callbacks(execute=True):
        order_redrive(order=order)

    order.refresh_from_db()
    fulfilment = Fulfilment.objects.get(order=order)
    assert (order.status, order.failure_reason) == ("PROCESSING", "")
    assert (fulfilment.status, fulfilment.attempts) == (Fulfilment.Status.PENDING, 0)
    assert "Zoho refused it." in fulfilment.last_error
    assert queued_jobs(clean_redis) == 1


def test_a_fulfilled_order_cannot_be_redriven_or_failed(api, product, zoho_sandbox):
    order = place(api, orderId="T2M-RD-2")
    order_provision(order_pk=order.pk)

    with pytest.raises(OrderStateError):
        order_redrive(order=order)
    order_mark_failed(order=order, reason="too late")

    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    assert events(order) == ["ORDER_FULFILLED"]


def test_an_order_on_hold_is_not_provisioned_until_released(
    api, product, zoho_sandbox, clean_redis, django_capture_on_commit_callbacks
):
    order = place(api, orderId="T2M-HOLD-1")
    order_hold(order=order)
    order_hold(order=order)  # twice is harmless

    order_provision(order_pk=order.pk)  # the queued job runs meanwhile
    assert orders_redrive_stalled(now=timezone.now() + timedelta(hours=1)) == 0

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert zoho_sandbox.sales_orders_for("T2M-HOLD-1") == []
    clean_redis.delete("provisioning")

    with django_capture_on_commit_callbacks(execute=True):
        order_release(order=order)
    order_provision(order_pk=order.pk)

    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    assert len(zoho_sandbox.sales_orders_for("T2M-HOLD-1")) == 1


def test_activation_reference_is_stable_and_written_to_the_custom_field_by_label_when_configured(
    api, product, zoho_sandbox, settings
):
    settings.ZOHO_ACTIVATION_FIELD = "Activation reference"
    order = place(api, orderId="T2M-CF-1")

    order_provision(order_pk=order.pk)

    order.refresh_from_db()
    [sales_order] = zoho_sandbox.sales_orders_for("T2M-CF-1")
    assert sales_order["custom_fields"] == [{"label": "Activation reference", "value": order.activation_reference}]
    assert order.activation_reference.count("-") == 4 and len(order.activation_reference) == 23
    assert activation_reference_derive(partner_id="ICONTECH001", order_id="T2M-CF-1") == order.activation_reference


def test_the_custom_field_id_wins_over_the_label_and_no_update_is_ever_sent(api, product, zoho_sandbox, settings):
    settings.ZOHO_ACTIVATION_FIELD = "Activation reference"
    settings.ZOHO_ACTIVATION_FIELD_ID = "460000000639127"
    order = place(api, orderId="T2M-CF-2")

    order_provision(order_pk=order.pk)

    order.refresh_from_db()
    [sales_order] = zoho_sandbox.sales_orders_for("T2M-CF-2")
    assert sales_order["custom_fields"] == [{"customfield_id": "460000000639127", "value": order.activation_reference}]
    assert order.status == Order.Status.FULFILLED
    assert not [call for call in zoho_sandbox.state.counts if call.startswith("PUT")]


def test_renewal_extends_the_subscription_and_keeps_its_activation_reference(api, product, zoho_sandbox):
    first = place(api, orderId="T2M-SUB-1")
    order_provision(order_pk=first.pk)
    first.refresh_from_db()
    previous_expiry = Fulfilment.objects.get(order=first).expires_at
    renewal = place(api, orderId="T2M-SUB-1-R1", type="RENEWAL", renewalOf="T2M-SUB-1", tenure="1_MONTH")

    order_provision(order_pk=renewal.pk)
    order_provision(order_pk=renewal.pk)  # a replay does not extend twice

    renewal.refresh_from_db()
    expected = timezone.localtime(previous_expiry) + relativedelta(months=1)
    assert renewal.status == Order.Status.FULFILLED
    assert renewal.activation_reference == first.activation_reference
    assert renewal.subscription == first.subscription
    assert renewal.subscription.expires_at == expected
    renewed = Fulfilment.objects.get(order=renewal)
    assert (renewed.starts_at, renewed.expires_at) == (previous_expiry, expected)
    assert Fulfilment.objects.get(order=first).expires_at == previous_expiry  # its own period, as history
    assert len(zoho_sandbox.sales_orders_for("T2M-SUB-1-R1")) == 1
    assert events(renewal) == ["SUBSCRIPTION_RENEWED"]
    data = WebhookLog.objects.get(order=renewal).payload["data"]
    assert data["renewalOf"] == "T2M-SUB-1"
    assert (data["previousExpiresAt"], data["expiresAt"]) == (iso_utc(previous_expiry), iso_utc(expected))


def test_redrive_command_takes_an_order_id_or_stuck(api, product, clean_redis):
    order = place(api, orderId="T2M-CMD-1")
    order_mark_failed(order=order, reason="x")
    out = StringIO()

    call_command("redrive_order", "T2M-CMD-1", stdout=out)

    assert "T2M-CMD-1: re-driven" in out.getvalue()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING
    with pytest.raises(CommandError):
        call_command("redrive_order", "NO-SUCH-ORDER", stdout=StringIO())
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    out = StringIO()
    call_command("redrive_order", "--stuck", stdout=out)
    assert "1 of 1 stuck order(s) re-driven." in out.getvalue()


def test_redrive_stuck_goes_on_past_an_order_it_cannot_redrive(api, product, clean_redis, monkeypatch):
    first, second = place(api, orderId="T2M-CMD-2"), place(api, orderId="T2M-CMD-3")
    Order.objects.filter(pk__in=[first.pk, second.pk]).update(updated_at=timezone.now() - timedelta(hours=1))
    # The first order is fulfilled by a worker between the command's listing and its re-drive.
    real_redrive = redrive_command.order_redrive

    def fulfilled_meanwhile(*, order):
        if order.pk == first.pk:
            Order.objects.filter(pk=first.pk).update(status=Order.Status.FULFILLED)
        return real_redrive(order=order)

    monkeypatch.setattr(redrive_command, "order_redrive", fulfilled_meanwhile)
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="1 order"):
        call_command("redrive_order", "--stuck", stdout=out, stderr=err)

    assert "T2M-CMD-3: re-driven" in out.getvalue() and "1 of 2 stuck order(s) re-driven." in out.getvalue()
    assert "T2M-CMD-2: a fulfilled order cannot be re-driven" in err.getvalue()
    assert Order.objects.get(pk=second.pk).fulfilment.last_error.startswith("re-driven")
