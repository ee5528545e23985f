# ruff: noqa: F811  (the browser_page fixture imported from tests.admin.test_browser is used as an argument)
"""The partner API's docs in a browser (issue 16, item 1): a staff member logged into the admin
opens ``/t2mobile/docs/`` and sees the operations, with every asset served by us.

Swagger UI comes from drf-spectacular-sidecar's static files; no request leaves the test server
(an offline or locked-down network has no CDN). ``tests/test_static_files.py`` proves that the
assets are served without ``runserver`` or the live server's static handler, as under gunicorn.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib.auth.models import Group
from playwright.sync_api import expect

from t2mobile_portal.staff_groups import SUPPORT_GROUP
from tests.admin.test_browser import CHROMIUM, browser_page, pytestmark  # noqa: F401

SWAGGER_BUNDLE = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"


def test_a_staff_member_logged_into_the_admin_sees_the_operations_with_no_external_request(
    live_server, browser_page, django_user_model
):
    user = django_user_model.objects.create_user(username="sandra", password="Sandra-support-2026", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    page = browser_page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "sandra")
    page.fill("#id_password", "Sandra-support-2026")
    page.click("input[type=submit]")
    expect(page.get_by_text("Site administration").or_(page.get_by_text("Overview")).first).to_be_visible()
    page.goto(f"{live_server.url}/t2mobile/docs/")

    fulfilment = page.locator(".opblock-summary-path", has_text="/t2mobile/fulfilment").first
    expect(fulfilment).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/t2mobile/products").first).to_be_visible()
    expect(page.locator(".opblock-summary-method", has_text="POST").first).to_be_visible()
    ours = urlsplit(live_server.url).netloc
    external = [url for url in requested if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != ours]
    assert external == []
    assert any(url.endswith(SWAGGER_BUNDLE) for url in requested)
