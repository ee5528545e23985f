"""Every page carries a Content-Security-Policy that runs no inline script and lets nothing frame it
(the browser tests, ``tests/admin/test_browser.py``, fail on any violation it reports)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/admin/login/", "/t2mobile/products", "/t2mobile/docs/"])
def test_the_policy_is_on_every_answer(client, path):
    policy = client.get(path)["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


def test_the_docs_page_loads_its_start_up_script_from_a_url(admin_client):
    page = admin_client.get("/t2mobile/docs/").content.decode()
    script = admin_client.get("/t2mobile/docs/?script")

    assert "<script>" not in page and "?script" in page
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
