"""The catalogue in the admin (publish, prices per tenure, sync now), the overview on the admin
index, and the rate limit on the admin login."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from catalogue.models import CatalogueSync, Product, ProductPlan
from integrations.zoho.auth import auth_backoff_record
from integrations.zoho.budget import zoho_budget
from integrations.zoho.errors import ZohoAuthError
from orders.models import Order
from tests.admin.conftest import make_event, make_order
from tests.conftest import caches_on
from tests.factories import CatalogueSyncFactory
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db


def product_form(product: Product, *, published: bool, prices: dict[str, str]) -> dict:
    plans = list(product.plans.order_by("pk"))
    data = {
        "plans-TOTAL_FORMS": str(len(plans)),
        "plans-INITIAL_FORMS": str(len(plans)),
        "plans-MIN_NUM_FORMS": "0",
        "plans-MAX_NUM_FORMS": "1000",
    }
    if published:
        data["is_published"] = "on"
    for i, plan in enumerate(plans):
        data.update(
            {
                f"plans-{i}-id": str(plan.pk),
                f"plans-{i}-product": str(product.pk),
                f"plans-{i}-tenure": plan.tenure,
                f"plans-{i}-price": prices.get(plan.tenure, str(plan.price)),
                f"plans-{i}-is_active": "on",
            }
        )
    return data


def test_staff_price_change_is_marked_as_staffs_and_served_by_the_api_at_once(
    ops, api, product, django_capture_on_commit_callbacks
):
    before = api.get("/t2mobile/products").json()  # fills the catalogue cache
    url = reverse("admin:catalogue_product_change", args=[product.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = ops.post(url, product_form(product, published=True, prices={"12_MONTHS": "14000.00"}))

    assert response.status_code == 302, response.content
    plan = ProductPlan.objects.get(product=product, tenure="12_MONTHS")
    assert plan.price == Decimal("14000.00") and plan.set_by_staff is True
    prices = {p["tenure"]: p["price"] for p in api.get("/t2mobile/products").json()["products"][0]["plans"]}
    assert prices["12_MONTHS"] == "14000.00" and before != prices


def test_unpublishing_is_remembered_as_staffs_choice_and_hides_the_product(
    ops, api, product, django_capture_on_commit_callbacks
):
    api.get("/t2mobile/products")
    url = reverse("admin:catalogue_product_change", args=[product.pk])

    with django_capture_on_commit_callbacks(execute=True):
        ops.post(url, product_form(product, published=False, prices={}))

    product.refresh_from_db()
    assert product.is_published is False and product.published_set_by_staff is True
    assert api.get("/t2mobile/products").json()["products"] == []


def test_sync_now_asks_then_queues_the_catalogue_task_after_commit(
    ops, clean_redis, django_capture_on_commit_callbacks
):
    url = reverse("admin:catalogue_product_sync")
    listing = ops.get(reverse("admin:catalogue_product_changelist")).content.decode()
    confirm = ops.get(url)

    with django_capture_on_commit_callbacks(execute=True):
        done = ops.post(url, {"post": "yes"})

    queued = [json.loads(raw)["headers"]["task"] for raw in clean_redis.lrange("default", 0, -1)]
    assert url in listing and "Yes, sync now" in confirm.content.decode()
    assert done.status_code == 302
    assert queued == ["integrations.sync_zoho_catalogue"]
    assert LogEntry.objects.filter(change_message="Queued a catalogue sync from Zoho").count() == 1


def test_support_can_neither_see_nor_use_sync_now(support, clean_redis):
    listing = support.get(reverse("admin:catalogue_product_changelist")).content.decode()
    response = support.post(reverse("admin:catalogue_product_sync"), {"post": "yes"})

    assert reverse("admin:catalogue_product_sync") not in listing
    assert response.status_code == 403 and clean_redis.llen("default") == 0


# --- Overview -------------------------------------------------------------------------------------


def figure(page: str, label: str) -> str:
    """The text of the figure cell next to ``label`` on the overview."""
    start = page.index(label)
    cell = page.index('class="figure"', start)
    body = page[page.index(">", cell) + 1 : page.index("</td>", cell)]
    return body.split(">")[-2].split("<")[0] if "<a" in body else body.strip()


def test_overview_counts_todays_orders_stuck_orders_and_webhooks_with_links(support, partner):
    make_order(partner, status=Order.Status.FAILED)
    make_order(partner, status=Order.Status.FAILED)
    make_order(partner, status=Order.Status.PROCESSING, age=timedelta(minutes=30))
    make_event(make_order(partner, status=Order.Status.FULFILLED), status=WebhookLog.Status.FAILED)
    make_event(make_order(partner, status=Order.Status.FULFILLED), status=WebhookLog.Status.PENDING)
    CatalogueSyncFactory(started_at=timezone.now(), status=CatalogueSync.Status.FAILED, error="Zoho 401")

    page = support.get(reverse("admin:index")).content.decode()

    assert figure(page, ">FAILED<") == "2"
    assert figure(page, "Stuck orders") == "2"
    assert figure(page, "Webhook events waiting") == "1"
    assert figure(page, "Webhook events failed") == "1"
    assert figure(page, "Zoho API calls today").endswith("%)")
    assert "FAILED" in figure(page, "Last catalogue sync")
    assert 'href="/admin/orders/order/?attention=stuck"' in page
    assert 'href="/admin/webhooks/webhooklog/?status__exact=FAILED"' in page


def test_overview_links_lead_to_exactly_the_counted_rows(support, partner):
    failed_today = make_order(partner, status=Order.Status.FAILED)
    make_order(partner, status=Order.Status.FAILED, age=timedelta(days=2))
    page = support.get(reverse("admin:index")).content.decode()
    start = page.index(">FAILED<")
    href = page[page.index('href="', start) + 6 : page.index('"', page.index('href="', start) + 6)]

    listing = support.get(href.replace("&amp;", "&"))

    assert [o.order_id for o in listing.context["cl"].result_list] == [failed_today.order_id]


# --- Login rate limit -----------------------------------------------------------------------------


def test_the_eleventh_login_attempt_in_a_minute_gets_429(client, django_user_model):
    django_user_model.objects.create_user(username="staff", password="right-password-123", is_staff=True)
    url = reverse("admin:login")
    answers = [client.post(url, {"username": "staff", "password": f"wrong-{i}"}).status_code for i in range(10)]

    blocked = client.post(url, {"username": "staff", "password": "right-password-123"})

    assert answers == [200] * 10
    assert blocked.status_code == 429
    assert "Too many login attempts" in blocked.content.decode()
    assert "_auth_user_id" not in client.session


def test_another_address_can_still_log_in(client, django_user_model):
    django_user_model.objects.create_user(username="staff", password="right-password-123", is_staff=True)
    url = reverse("admin:login")
    for i in range(11):
        client.post(url, {"username": "staff", "password": f"wrong-{i}"}, REMOTE_ADDR="10.0.0.9")

    response = client.post(url, {"username": "staff", "password": "right-password-123"}, REMOTE_ADDR="10.0.0.10")

    assert response.status_code == 302


def test_behind_our_proxy_each_staff_member_has_their_own_login_budget(client, django_user_model, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    django_user_model.objects.create_user(username="staff", password="right-password-123", is_staff=True)
    url = reverse("admin:login")
    via_proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for i in range(11):
        client.post(
            url, {"username": "staff", "password": f"wrong-{i}"}, HTTP_X_FORWARDED_FOR="203.0.113.7", **via_proxy
        )

    response = client.post(
        url, {"username": "staff", "password": "right-password-123"}, HTTP_X_FORWARDED_FOR="203.0.113.8", **via_proxy
    )

    assert response.status_code == 302


def test_staff_can_still_log_in_while_redis_is_down(client, django_user_model, settings):
    django_user_model.objects.create_user(username="staff", password="right-password-123", is_staff=True)
    settings.CACHES = caches_on("redis://127.0.0.1:1/0", timeout=0.2)

    response = client.post(reverse("admin:login"), {"username": "staff", "password": "right-password-123"})

    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_a_direct_caller_rotating_x_forwarded_for_cannot_escape_the_login_limit(client, django_user_model, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    django_user_model.objects.create_user(username="staff", password="right-password-123", is_staff=True)
    url = reverse("admin:login")
    statuses = [
        client.post(
            url,
            {"username": "staff", "password": f"wrong-{i}"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
            REMOTE_ADDR="203.0.113.66",
        ).status_code
        for i in range(12)
    ]

    assert statuses[-1] == 429


def test_overview_says_why_and_until_when_zoho_calls_are_paused_and_since_when_zoho_refuses_us(support):
    zoho_budget().pause(60, reason="Zoho's per-minute call limit reached (code 44)")
    auth_backoff_record(ZohoAuthError("token refresh failed: invalid_client"))

    page = support.get(reverse("admin:index")).content.decode()

    assert "Zoho calls paused: Zoho&#x27;s per-minute call limit reached (code 44)" in page
    assert "Zoho refuses our credentials" in page and "since " in page
