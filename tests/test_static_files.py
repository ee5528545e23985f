"""Static files are served by the application itself (WhiteNoise), as under gunicorn, where no
``runserver`` and no live-server handler serve them: the admin's CSS and the docs' Swagger UI."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path, marker",
    [
        ("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", b"SwaggerUIBundle"),
        ("/static/admin/css/base.css", b"body"),
    ],
)
def test_static_assets_are_served_with_debug_off(settings, path, marker):
    settings.DEBUG = False

    response = Client().get(path)

    assert response.status_code == 200
    assert marker in b"".join(response.streaming_content)


def test_the_docs_page_points_at_our_own_assets_not_a_cdn(api):
    page = api.get("/t2mobile/docs/", HTTP_ACCEPT="text/html").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
