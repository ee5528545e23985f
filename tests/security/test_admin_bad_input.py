"""Issue 21, point 3: no admin URL answers 500 to an id or a filter it cannot use.

Walks every registered ModelAdmin (ours, Django's, django-celery-beat's): its change list with a NUL
in a filter on each of its fields and in the search, and every URL of it that takes an object id
(Django's own and the custom action buttons) with ids that are not ids. A ModelAdmin or an action
added tomorrow is walked the day it is written. The answers are Django's own: the change list's
``?e=1`` redirect for a filter it cannot apply, the "does not exist" redirect (or a 404) for an id.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import URLPattern, reverse
from django.urls.resolvers import RoutePattern

pytestmark = pytest.mark.django_db

BAD_IDS = ("abc", "a\x00", "9" * 30, "1 OR 1=1")
ACTION_NAME_PLACEHOLDERS = ("no_such_action",)


def registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def filterable_fields(model):
    return [f for f in model._meta.get_fields() if getattr(f, "concrete", False) and not f.many_to_many]


def changelist_cases():
    for model, _ in registered():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        yield pytest.param(url, {"q": "a\x00"}, id=f"{model._meta.label}-q")
        for field in filterable_fields(model):
            name = field.attname if field.is_relation else field.name
            for value in ("\x00", "a\x00"):
                yield pytest.param(url, {f"{name}__exact": value}, id=f"{model._meta.label}-{name}-{value!r}")


def object_url_cases():
    for _model, model_admin in registered():
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not isinstance(pattern.pattern, RoutePattern):
                continue
            converters = pattern.pattern.converters
            if "object_id" not in converters or not pattern.name:
                continue
            extra = [name for name in converters if name != "object_id"]
            values = (
                list(getattr(model_admin, "object_actions", ())) + list(ACTION_NAME_PLACEHOLDERS) if extra else [None]
            )
            for value in values:
                for bad in BAD_IDS:
                    kwargs = {"object_id": bad, **({extra[0]: value} if extra else {})}
                    yield pytest.param(pattern.name, kwargs, id=f"{pattern.name}-{value}-{bad!r}")


@pytest.mark.parametrize("url, params", list(changelist_cases()))
def test_a_nul_in_a_changelist_filter_is_djangos_error_redirect_not_a_500(superuser, url, params):
    response = superuser.get(url, params)

    assert response.status_code in (200, 302, 400), response.status_code
    if response.status_code == 302:
        assert response["Location"].endswith("?e=1")


@pytest.mark.parametrize("url_name, kwargs", list(object_url_cases()))
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_object_url_with_an_id_that_is_no_id_is_a_redirect_or_404_not_a_500(superuser, url_name, kwargs, method):
    url = reverse(f"admin:{url_name}", kwargs=kwargs)

    response = getattr(superuser, method)(url)

    assert response.status_code in (302, 403, 404), response.status_code


def test_the_walk_covers_the_custom_action_buttons():
    names = {kwargs.get("action_name") for _, kwargs in (case.values for case in object_url_cases())}

    assert {"redrive_orders", "rotate_webhook_secret", "resend_events"} <= names


def bulk_action_cases():
    for model, model_admin in registered():
        for name in getattr(model_admin, "actions", None) or ():
            if isinstance(name, str):
                for bad in ("abc", "a\x00"):
                    yield pytest.param(model, name, bad, id=f"{model._meta.label}-{name}-{bad!r}")


@pytest.mark.parametrize("model, action, bad", list(bulk_action_cases()))
def test_a_bulk_action_on_ids_that_are_no_ids_is_not_a_500(superuser, model, action, bad):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    response = superuser.post(url, {"action": action, "_selected_action": [bad], "index": "0"})

    assert response.status_code in (200, 302, 400, 403, 404), response.status_code
