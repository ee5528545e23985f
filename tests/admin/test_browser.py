# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""End to end in a real browser: a Support user logs in, opens the stuck filter, re-drives a FAILED
order, and sees it FULFILLED once the worker has provisioned it; the overview's 14-day chart draws
the right bars, and at 1400 px the order list shows every column.

The browser is Debian's Chromium (``/usr/bin/chromium``) driven by Playwright for Python against
pytest-django's ``live_server``. The worker is real: a Celery worker (solo pool, in a thread)
consuming the ``provisioning`` queue from Redis runs ``orders.provision_order`` against the local
Zoho sandbox (``integrations/zoho/sandbox.py``, the same HTTP protocol as Zoho), so the re-drive
goes through the broker exactly as in production. The chart test also saves a screenshot of the
overview page to ``docs/admin-overview.png`` for docs/admin.md.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from catalogue.models import CatalogueSync
from orders.models import Order
from t2mobile_portal.staff_groups import SUPPORT_GROUP
from tests.admin.conftest import make_event, make_order
from tests.factories import CatalogueSyncFactory
from tests.zoho_fixtures import provisioning_worker, wait_for, zoho_sandbox  # noqa: F401
from webhooks.models import WebhookLog

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "admin-overview.png"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does it)",
    ),
]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM reads are
    # synchronous and safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(15_000)
        refused: list[str] = []  # what the Content-Security-Policy blocked: nothing may be
        page.on(
            "console",
            lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
        )
        yield page
        browser.close()
    assert refused == [], refused


def log_in(page, live_server, django_user_model, username: str = "sandra") -> None:
    password = "Sandra-support-2026"
    user = django_user_model.objects.create_user(username=username, password=password, is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    sign_in(page, live_server, username, password)


def sign_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#overview")


def days_ago(n: int) -> str:
    return (timezone.localdate() - timedelta(days=n)).isoformat()


def test_the_overview_draws_14_days_of_orders_and_webhooks_and_the_order_list_fits_1400_px(
    live_server, browser_page, partner, product, django_user_model
):
    # Given orders and webhook events over the last weeks, one batch older than the 14 days shown
    # (noon of each day, so that no count sits on a day boundary)
    noon = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)

    def age(days: int) -> timedelta:
        return timezone.localtime() - (noon - timedelta(days=days))

    seeded_orders = {(0, "FULFILLED"): 3, (0, "FAILED"): 1, (2, "PROCESSING"): 2, (5, "FULFILLED"): 1}
    for (days, status), n in {**seeded_orders, (20, "FULFILLED"): 4}.items():
        for _ in range(n):
            order = make_order(
                partner, status=status, product_id=product.item_id, age=age(days) if days else timedelta(0)
            )
    seeded_events = {(0, "SENT"): 2, (0, "FAILED"): 1, (3, "SENT"): 1}
    for (days, status), n in seeded_events.items():
        for _ in range(n):
            event = make_event(order, status=status, event_type=WebhookLog.EventType.ORDER_FULFILLED)
            WebhookLog.objects.filter(pk=event.pk).update(created_at=noon - timedelta(days=days))
    page = browser_page

    # When a support lead opens the overview
    log_in(page, live_server, django_user_model)

    # Then the chart shows exactly the seeded bars of the 14 days, each with its count on hover
    chart = page.locator("#activity svg#activity-chart")
    expect(chart).to_be_visible()
    assert "Orders and webhook deliveries per day" in chart.locator("title#activity-chart-title").text_content()
    expected = {("orders", days_ago(d), s): n for (d, s), n in seeded_orders.items()}
    expected |= {("webhooks", days_ago(d), s): n for (d, s), n in seeded_events.items()}
    bars = chart.locator("rect.bar")
    drawn = {
        (
            bar.evaluate("b => b.closest('g.panel').dataset.panel"),
            bar.get_attribute("data-day"),
            bar.get_attribute("data-series"),
        ): int(bar.get_attribute("data-value"))
        for bar in bars.all()
    }
    assert drawn == expected
    today_fulfilled = chart.locator(f"g[data-panel=orders] rect[data-day='{days_ago(0)}'][data-series=FULFILLED]")
    assert today_fulfilled.locator("title").text_content() == f"{days_ago(0)}: 3 FULFILLED"
    five_days_fulfilled = chart.locator(f"g[data-panel=orders] rect[data-day='{days_ago(5)}'][data-series=FULFILLED]")
    # Heights are to scale: 3 orders draw three times as tall as 1.
    assert today_fulfilled.bounding_box()["height"] == pytest.approx(
        3 * five_days_fulfilled.bounding_box()["height"], rel=0.02
    )
    for text in ("delivered", "failed", "FULFILLED", "PROCESSING"):
        assert chart.get_by_text(text, exact=True).count() >= 1, text
    assert chart.get_by_text("day created", exact=False).count() == 2  # the x axis of each panel
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # And the order list at 1400 px shows every column inside the window, none scrolled out of sight
    page.goto(f"{live_server.url}/admin/orders/order/")
    headers = page.locator("#result_list thead th")
    expect(headers.last).to_be_visible()
    viewport = page.viewport_size["width"]
    assert viewport == 1400
    table = page.locator("#result_list").bounding_box()
    assert table["x"] + table["width"] <= viewport, table
    for header in headers.all():
        box = header.bounding_box()
        assert box["x"] + box["width"] <= viewport, (header.inner_text(), box)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport
    assert page.evaluate("document.querySelector('#result_list').closest('.results').scrollWidth") <= page.evaluate(
        "document.querySelector('#result_list').closest('.results').clientWidth"
    )


def test_support_redrives_a_failed_order_from_the_stuck_filter_and_sees_it_fulfilled(
    live_server, browser_page, partner, product, zoho_sandbox, provisioning_worker, django_user_model
):
    # Given a FAILED order whose ORDER_FAILED webhook also failed, beside a quiet day's other orders
    failed = make_order(
        partner,
        status=Order.Status.FAILED,
        product_id=product.item_id,
        customer_email="ada.obi@example.com",
        failure_reason="The order could not be provisioned within 24 hours.",
    )
    make_event(failed, status=WebhookLog.Status.FAILED, attempts=(503, 503, 500))
    make_order(
        partner,
        status=Order.Status.PROCESSING,
        product_id=product.item_id,
        age=timedelta(minutes=40),
        customer_email="bola@example.com",
    )
    for _ in range(3):
        make_order(partner, status=Order.Status.FULFILLED, product_id=product.item_id)
    CatalogueSyncFactory(
        started_at=timezone.now() - timedelta(minutes=7),
        finished_at=timezone.now(),
        status=CatalogueSync.Status.DONE,
        items_seen=1,
    )
    user = django_user_model.objects.create_user(username="sandra", password="Sandra-support-2026", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    page = browser_page

    # When she logs in, looks at the overview, opens the stuck filter and re-drives the order
    sign_in(page, live_server, "sandra", "Sandra-support-2026")
    stuck_row = page.locator("#overview tr", has_text="Stuck orders")
    expect(stuck_row.locator("td.figure")).to_have_text("2")

    page.goto(f"{live_server.url}/admin/orders/order/")
    page.click("#changelist-filter >> text=Stuck: PROCESSING over 15 min, or a FAILED webhook")
    page.wait_for_url("**attention=stuck**")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)  # waits for the filtered page
    row = page.locator("#result_list tbody tr", has_text=failed.order_id)
    assert "a***@example.com" in row.inner_text() and "ada.obi@example.com" not in page.content()
    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "redrive_orders")
    page.click("button[name=index]")
    page.wait_for_selector("text=Queue provisioning again now for these orders?")
    page.click("input[value='Yes, re-drive']")
    page.wait_for_selector("text=Re-driven: 1 of 1.")

    # Then the worker provisions it, and her page of the order says FULFILLED with its licence
    wait_for(lambda: Order.objects.get(pk=failed.pk).status == Order.Status.FULFILLED, timeout=30)
    page.goto(f"{live_server.url}/admin/orders/order/{failed.pk}/change/")
    why = page.locator(".field-where_and_why").inner_text()
    assert "Order is FULFILLED." in why and "Fulfilment ACTIVE" in why
    failed.refresh_from_db()
    assert failed.activation_reference and failed.activation_reference in page.content()
    assert len(zoho_sandbox.sales_orders_for(failed.order_id)) == 1
    assert (
        "Re-drove provisioning (was FAILED)"
        in page.goto(f"{live_server.url}/admin/orders/order/{failed.pk}/history/").text()
    )


def _overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_pages_show_the_buttons_their_state_allows_beside_the_heading_never_over_it(
    live_server, browser_page, partner, product, django_user_model
):
    # Given a FAILED order with a FAILED event, and a superuser (who may press every button)
    failed = make_order(partner, status=Order.Status.FAILED, product_id=product.item_id)
    make_event(failed, status=WebhookLog.Status.FAILED)
    make_order(partner, status=Order.Status.FULFILLED, product_id=product.item_id)
    django_user_model.objects.create_superuser(username="root-admin", password="Root-admin-2026-pages")
    page = browser_page
    sign_in(page, live_server, "root-admin", "Root-admin-2026-pages")

    # The order page offers what a FAILED order allows, and nothing that would answer "not done"
    page.goto(f"{live_server.url}/admin/orders/order/{failed.pk}/change/")
    buttons = [text.strip() for text in page.locator(".object-tools li").all_text_contents()]
    assert buttons == ["Re-drive provisioning", "Resend FAILED webhooks", "History"], buttons
    assert f"Zoho fulfilment of order {failed.order_id}" in page.locator(".inline-group").first.inner_text()
    assert " WAT" in page.locator(".field-created_at").first.inner_text()  # times carry their zone
    tools, heading = page.locator(".object-tools").bounding_box(), page.locator("#content > h2").bounding_box()
    assert not _overlap(tools, heading), (tools, heading)

    # The partner page: six buttons at 1400 px and at a narrow 800 px, none over the heading
    page.goto(f"{live_server.url}/admin/partners/partner/{partner.pk}/change/")
    assert page.locator(".field-deliveries .readonly").inner_text() == "running"
    buttons = [text.strip() for text in page.locator(".object-tools li").all_text_contents()]
    assert "Pause deliveries" in buttons and "Resume deliveries" not in buttons and "Enable endpoint" not in buttons
    for width in (1400, 800):
        page.set_viewport_size({"width": width, "height": 1000})
        tools, heading = page.locator(".object-tools").bounding_box(), page.locator("#content > h2").bounding_box()
        assert not _overlap(tools, heading), (width, tools, heading)
    page.set_viewport_size({"width": 1400, "height": 1000})

    # The order list at 1400 px breaks no status, type or tenure in the middle of a word
    page.goto(f"{live_server.url}/admin/orders/order/")
    lines_per_cell = page.evaluate(
        """() => [...document.querySelectorAll(
              '#result_list td.field-status, #result_list td.field-type, #result_list td.field-tenure')]
            .map(td => { const r = document.createRange(); r.selectNodeContents(td);
                         return [td.innerText, new Set([...r.getClientRects()].map(c => Math.round(c.top))).size]; })"""
    )
    assert lines_per_cell and all(lines == 1 for _, lines in lines_per_cell), lines_per_cell
