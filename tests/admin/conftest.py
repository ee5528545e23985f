"""Fixtures of the back-office tests: staff users in the Support and Ops groups, orders in every
state, webhook events with attempts, and helpers to run an admin action like a browser does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from t2mobile_portal.staff_groups import OPS_GROUP, SUPPORT_GROUP
from tests.factories import OrderFactory, WebhookLogFactory
from webhooks.models import WebhookLog


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
    """An order with its fulfilment, ``age`` old (created and last updated that long ago)."""
    order = OrderFactory(partner=partner, status=status, **fields)
    if age:
        Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - age, updated_at=timezone.now() - age)
        order.refresh_from_db()
    return order


def make_event(
    order, *, status=WebhookLog.Status.FAILED, event_type=WebhookLog.EventType.ORDER_FAILED, attempts=(500,)
) -> WebhookLog:
    """An event of ``order`` whose payload carries the customer's contact details, ``attempts`` tried."""
    log = WebhookLogFactory(order=order, status=status, event_type=event_type, attempts=list(attempts))
    log.payload["data"].update(customerEmail=order.customer_email, customerPhone=order.customer_phone)
    WebhookLog.objects.filter(pk=log.pk).update(payload=log.payload)
    return log


def run_action(client, model_path: str, action: str, objects, *, confirm: bool, **form):
    """POST an admin action as the change list does; ``confirm`` also presses the page's "Yes"."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(obj.pk) for obj in objects], **form}
    if confirm:
        data["post"] = "yes"
    return client.post(reverse(f"admin:{model_path}_changelist"), data)
