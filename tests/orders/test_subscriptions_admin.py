"""Subscriptions in the back-office: a read-only list by activation reference, customer, product,
status and expiry, found by reference or customer, filtered by status; the page shows every order
of it with the period it paid for; the order page links to it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import Subscription
from t2mobile_portal.staff_groups import SUPPORT_GROUP
from tests.admin.conftest import staff_client
from tests.factories import ProductFactory, SubscriptionFactory, renewal_create
from tests.zoho_fixtures import MAIL_LITE

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = reverse("admin:orders_subscription_changelist")


@pytest.fixture
def support(django_user_model):
    return staff_client(django_user_model, username="sandra-support", group=SUPPORT_GROUP)


def listed(client, **params) -> list[str]:
    response = client.get(SUBSCRIPTIONS, params)
    assert response.status_code == 200
    return [row.activation_reference for row in response.context["cl"].result_list]


def test_support_lists_subscriptions_with_customer_product_status_and_expiry(support, partner):
    ProductFactory(item_id=MAIL_LITE["item_id"], name=MAIL_LITE["name"])
    SubscriptionFactory(partner=partner, activation_reference="ACT-LIST-1", customer_id="CUST-LIST")

    page = support.get(SUBSCRIPTIONS).content.decode()

    assert '<td class="field-customer_id">CUST-LIST</td>' in page
    assert f'<td class="field-product">{MAIL_LITE["name"]} ({MAIL_LITE["item_id"]})</td>' in page
    assert '<td class="field-status">Active</td>' in page and 'class="field-expires_at' in page


def test_search_by_activation_reference_or_customer_and_filter_by_status(support, partner):
    SubscriptionFactory(partner=partner, activation_reference="ACT-FIND-1", customer_id="CUST-FIND-1")
    SubscriptionFactory(
        partner=partner,
        activation_reference="ACT-FIND-2",
        customer_id="CUST-FIND-2",
        status=Subscription.Status.EXPIRED,
        expires_at=timezone.now() - timedelta(days=3),
    )

    assert listed(support, q="ACT-FIND-2") == ["ACT-FIND-2"]
    assert listed(support, q="CUST-FIND-1") == ["ACT-FIND-1"]
    assert listed(support, status__exact="EXPIRED") == ["ACT-FIND-2"]


def test_subscription_page_is_read_only_and_shows_every_order_of_it(support, partner):
    subscription = SubscriptionFactory(partner=partner, activation_reference="ACT-PAGE-1")
    renewal = renewal_create(subscription=subscription, expires_at=subscription.expires_at + timedelta(days=30))
    url = reverse("admin:orders_subscription_change", args=[subscription.pk])

    page = support.get(url).content.decode()

    assert subscription.origin_order.order_id in page and renewal.order_id in page
    assert 'name="_save"' not in page
    assert support.post(url, {"status": "EXPIRED"}).status_code == 403
    assert support.get(reverse("admin:orders_subscription_add")).status_code == 403


def test_the_order_page_links_to_its_subscription(support, partner):
    subscription = SubscriptionFactory(partner=partner, activation_reference="ACT-LINK-1")

    page = support.get(reverse("admin:orders_order_change", args=[subscription.origin_order_id])).content.decode()

    assert reverse("admin:orders_subscription_change", args=[subscription.pk]) in page
