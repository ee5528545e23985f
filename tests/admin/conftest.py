"""Fixtures of the back-office tests: staff users in the Support and Ops groups, orders in every
state, webhook events with attempts, and helpers to run an admin action like a browser does."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import Fulfilment, Order
from t2mobile_portal.staff_groups import OPS_GROUP, SUPPORT_GROUP
from tests.zoho_fixtures import MAIL_LITE
from webhooks.models import WebhookAttempt, WebhookLog

_numbers = itertools.count(1)


def staff_client(django_user_model, *, username: str, group: str | None = None, superuser: bool = False) -> Client:
    if superuser:
        user = django_user_model.objects.create_superuser(username=username, password="pw-not-used", email="")
    else:
        user = django_user_model.objects.create_user(username=username, password="pw-not-used", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def support(db, django_user_model) -> Client:
    return staff_client(django_user_model, username="sandra-support", group=SUPPORT_GROUP)


@pytest.fixture
def ops(db, django_user_model) -> Client:
    return staff_client(django_user_model, username="olu-ops", group=OPS_GROUP)


@pytest.fixture
def superuser(db, django_user_model) -> Client:
    return staff_client(django_user_model, username="root", superuser=True)


def make_order(partner, *, status=Order.Status.PROCESSING, age=timedelta(0), **fields) -> Order:
    n = next(_numbers)
    defaults = dict(
        order_id=f"T2M9{n:05d}",
        customer_id=f"CUST-{n:04d}",
        customer_name="Ada Obi",
        customer_email=f"ada.obi{n}@example.com",
        customer_phone="+2348031234567",
        product_id=MAIL_LITE["item_id"],
        tenure="12_MONTHS",
        unit_price=Decimal("15000.00"),
        idempotency_key=f"key-{n}",
        status=status,
    )
    defaults.update(fields)
    order = Order.objects.create(partner=partner, **defaults)
    fulfilment_status = {
        Order.Status.FULFILLED: Fulfilment.Status.ACTIVE,
        Order.Status.FAILED: Fulfilment.Status.FAILED,
    }.get(status, Fulfilment.Status.PENDING)
    Fulfilment.objects.create(order=order, status=fulfilment_status)
    if age:
        Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - age, updated_at=timezone.now() - age)
        order.refresh_from_db()
    return order


def make_event(
    order, *, status=WebhookLog.Status.FAILED, event_type=WebhookLog.EventType.ORDER_FAILED, attempts=(500,)
) -> WebhookLog:
    n = next(_numbers)
    payload = {
        "id": f"evt_{n:032d}",
        "type": event_type,
        "partnerId": order.partner.partner_id,
        "data": {
            "orderId": order.order_id,
            "customerEmail": order.customer_email,
            "customerPhone": order.customer_phone,
        },
    }
    log = WebhookLog.objects.create(
        event_id=payload["id"],
        partner=order.partner,
        event_type=event_type,
        order=order,
        payload=payload,
        body="{}",
        status=status,
        retries=len(attempts),
    )
    for code in attempts:
        WebhookAttempt.objects.create(log=log, duration_ms=120, status_code=code, response_excerpt="upstream down")
    return log


def run_action(client, model_path: str, action: str, objects, *, confirm: bool, **form):
    """POST an admin action as the change list does; ``confirm`` also presses the page's "Yes"."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(obj.pk) for obj in objects], **form}
    if confirm:
        data["post"] = "yes"
    return client.post(reverse(f"admin:{model_path}_changelist"), data)
