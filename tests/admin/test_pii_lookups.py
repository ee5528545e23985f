"""Masked contact data cannot be unmasked through the change list's query string (issue 11, item 1).

The attack: a Support user filters one order's list by ``customer_email__gte=<guess>`` and reads
whether the order is still there; bisecting each character recovers the whole address in a few
hundred requests while the page shows it masked. Every lookup that reveals part of a value is a 400
now, for staff without ``orders.view_customer_pii``; the exact value still finds the order.
"""

from __future__ import annotations

import string

import pytest
from django.contrib import admin
from django.urls import reverse

from core.admin_pii import PiiGuardedAdmin
from tests.admin.conftest import make_event, make_order
from tests.factories import IdempotencyRecordFactory

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:orders_order_changelist")
EMAIL = "zed.secret@example.com"
PHONE = "+2348039998877"
ALPHABET = sorted(set(string.ascii_lowercase + string.digits + "@._+-"))


def listed(client, url: str, params: dict, needle: str) -> bool | None:
    """Is the order shown for these params? None when the admin refuses the question."""
    response = client.get(url, params)
    if response.status_code == 400:
        return None
    assert response.status_code == 200, response.status_code
    return needle in [row.order_id for row in response.context["cl"].result_list]


def bisect_prefix(client, order, field: str, length: int) -> str:
    """The attack as it was run: for each position, bisect the next character with ``__gte``."""
    known = ""
    for _ in range(length):
        low, high = 0, len(ALPHABET) - 1
        while low < high:
            middle = (low + high + 1) // 2
            answer = listed(
                client, ORDERS, {"order_id": order.order_id, f"{field}__gte": known + ALPHABET[middle]}, order.order_id
            )
            if answer is None:
                return known
            low, high = (middle, high) if answer else (low, middle - 1)
        known += ALPHABET[low]
    return known


def test_support_cannot_bisect_a_customer_email_from_the_order_list(support, partner):
    order = make_order(partner, customer_email=EMAIL)

    recovered = bisect_prefix(support, order, "customer_email", 6)

    assert recovered == ""  # before the fix: "zed.se"


def test_the_same_bisection_works_for_a_superuser_who_may_see_the_address(superuser, partner):
    order = make_order(partner, customer_email=EMAIL)

    assert bisect_prefix(superuser, order, "customer_email", 6) == EMAIL[:6]


@pytest.mark.parametrize(
    "lookup, value",
    [
        ("customer_email__gte", "m"),
        ("customer_email__lt", "m"),
        ("customer_email__gt", "m"),
        ("customer_email__lte", "m"),
        ("customer_email__startswith", "zed"),
        ("customer_email__istartswith", "ZED"),
        ("customer_email__endswith", "example.com"),
        ("customer_email__contains", "secret"),
        ("customer_email__icontains", "SECRET"),
        ("customer_email__regex", "^z"),
        ("customer_email__iregex", "^Z"),
        ("customer_email__range", "a,m"),
        ("customer_email__in", f"{EMAIL},x@example.com"),
        ("customer_email__lower__gte", "m"),
        ("customer_phone__startswith", "+234803"),
        ("customer_phone__gte", "+2348035"),
        ("customer_phone__regex", "7$"),
        ("renewal_of__customer_email__startswith", "zed"),
        ("partner__orders__customer_email__startswith", "zed"),
    ],
)
def test_every_partial_lookup_on_contact_data_is_a_400_for_support(support, partner, lookup, value):
    make_order(partner, customer_email=EMAIL, customer_phone=PHONE)

    response = support.get(ORDERS, {lookup: value})

    assert response.status_code == 400


@pytest.mark.parametrize(
    "url, lookup, value",
    [
        ("admin:webhooks_webhooklog_changelist", "payload__data__customerEmail__startswith", "zed"),
        ("admin:webhooks_webhooklog_changelist", "payload__data__customerPhone__gte", "+2348035"),
        ("admin:webhooks_webhooklog_changelist", "payload__icontains", "secret"),
        ("admin:webhooks_webhooklog_changelist", "body__contains", "zed"),
        ("admin:webhooks_webhooklog_changelist", "order__customer_email__gte", "m"),
        ("admin:orders_idempotencyrecord_changelist", "response_body__icontains", "zed"),
        ("admin:orders_idempotencyrecord_changelist", "response_body__details__customerEmail__gte", "m"),
        ("admin:partners_apikey_changelist", "partner__orders__customer_email__startswith", "zed"),
        ("admin:partners_partner_changelist", "orders__customer_email__startswith", "zed"),
    ],
)
def test_related_admins_and_stored_documents_refuse_partial_lookups_too(support, partner, url, lookup, value):
    order = make_order(partner, customer_email=EMAIL, customer_phone=PHONE)
    make_event(order)
    IdempotencyRecordFactory(
        partner=partner, key="k1", fingerprint="f", expires_at=order.created_at, response_body={"x": EMAIL}
    )

    response = support.get(reverse(url), {lookup: value})

    assert response.status_code == 400


def test_ordering_by_a_contact_field_is_refused_for_support(support, partner, monkeypatch):
    make_order(partner, customer_email=EMAIL)
    order_admin = admin.site._registry[type(make_order(partner))]
    monkeypatch.setattr(order_admin, "ordering", ("customer_email",))

    assert support.get(ORDERS).status_code == 400


def test_a_list_filter_or_contains_search_on_contact_data_is_not_offered_to_support(support, partner, monkeypatch):
    order = make_order(partner, customer_email=EMAIL)
    order_admin = admin.site._registry[type(order)]
    monkeypatch.setattr(order_admin, "list_filter", ("status", "customer_email"))
    monkeypatch.setattr(order_admin, "search_fields", ("=order_id", "customer_email"))

    page = support.get(ORDERS).content.decode()
    searched = support.get(ORDERS, {"q": "secret"}).content.decode()

    assert EMAIL not in page  # the values filter would list every address
    assert order.order_id not in searched  # a contains search would find it by a fragment


def test_exact_search_by_full_email_or_phone_still_finds_the_order_for_support(support, partner):
    order = make_order(partner, customer_email=EMAIL, customer_phone=PHONE)
    other = make_order(partner)

    by_email = support.get(ORDERS, {"q": EMAIL}).content.decode()
    by_phone = support.get(ORDERS, {"q": PHONE}).content.decode()
    by_filter = support.get(ORDERS, {"customer_email": EMAIL})

    assert order.order_id in by_email and other.order_id not in by_email
    assert order.order_id in by_phone
    assert by_filter.status_code == 200 and order.order_id in by_filter.content.decode()


def test_every_admin_of_ours_carries_the_guard():
    ours = [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in {"orders", "webhooks", "integrations"}
    ]

    assert ours and all(isinstance(model_admin, PiiGuardedAdmin) for model_admin in ours)
