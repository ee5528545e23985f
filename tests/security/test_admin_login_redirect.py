"""Issue 21, point 8b: after an admin login, a ``next`` off this site (or none) leads to the overview.

Django's LoginView refuses an unsafe ``next`` and falls back to ``LOGIN_REDIRECT_URL``, whose default
``/accounts/profile/`` is a 404 here; the back-office site sends staff to ``/admin/`` instead, and a
safe ``next`` still wins.
"""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
ORDERS = "/admin/orders/order/"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(username="ada", password="a-long-test-password", email="")


def log_in(*, query: dict | None = None, form_next: str | None = None):
    data = {"username": "ada", "password": "a-long-test-password"}
    if form_next is not None:
        data["next"] = form_next
    url = LOGIN + ("?" + "&".join(f"next={value}" for value in query.values()) if query else "")
    return Client().post(url, data)


@pytest.mark.parametrize(
    "query, form_next",
    [
        ({"next": "https://evil.example/"}, None),
        (None, "https://evil.example/"),
        (None, "//evil.example/admin/"),
        (None, "http:///evil.example"),
        (None, ""),
        (None, None),
    ],
    ids=["query-other-host", "form-other-host", "form-scheme-relative", "form-malformed", "form-empty", "none"],
)
def test_an_unsafe_or_missing_next_lands_on_the_admin_index(staff, query, form_next):
    response = log_in(query=query, form_next=form_next)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


@pytest.mark.parametrize(
    "query, form_next", [({"next": ORDERS}, None), (None, ORDERS), ({"next": "/admin/"}, ORDERS)], ids=str
)
def test_a_safe_next_is_followed(staff, query, form_next):
    response = log_in(query=query, form_next=form_next)

    assert response.status_code == 302
    assert response["Location"] == ORDERS


def test_the_login_page_for_an_unsafe_next_carries_the_admin_index(db):
    page = Client().get(LOGIN, {"next": "https://evil.example/"}).content.decode()

    # (the form posts back to the same URL, query included; that POST is made safe again)
    assert 'name="next" value="/admin/"' in page
    assert 'name="next" value="https://evil.example/"' not in page


def test_a_wrong_password_with_an_unsafe_next_is_still_refused(staff):
    response = Client().post(LOGIN + "?next=https://evil.example/", {"username": "ada", "password": "wrong"})

    assert response.status_code == 200
    assert 'name="next" value="/admin/"' in response.content.decode()
