"""The partner form: a rate limit is checked by the throttle's own parser (a bad one is a clear form
error, never a partner answered with 500s or locked out), and the Zoho prefix is set once, at
creation, and shown in the list and on the page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from partners.models import Partner

pytestmark = pytest.mark.django_db


#: The management forms of the page's two inlines (keys, and secrets for staff who may see them).
INLINES_EMPTY = {
    f"{inline}-{count}": "0" for inline in ("api_keys", "webhook_secrets") for count in ("TOTAL_FORMS", "INITIAL_FORMS")
}


def change_form(partner: Partner, **fields) -> dict:
    return {
        "name": partner.name,
        "webhook_url": partner.webhook_url,
        "webhook_scheme": partner.webhook_scheme,
        "rate_limit": partner.rate_limit,
        **INLINES_EMPTY,
        **fields,
    }


def add_form(**fields) -> dict:
    return {
        "partner_id": "OTHERCO01",
        "prefix": "OTH",
        "name": "OtherCo",
        "webhook_url": "",
        "webhook_scheme": "standard-webhooks-v1",
        "rate_limit": "",
        **INLINES_EMPTY,
        **fields,
    }


@pytest.mark.parametrize("bad", ["100/w", "1e3/m", "0/m", "abc"])
def test_a_rate_limit_the_throttle_cannot_read_is_refused_with_the_accepted_form(bad, ops, partner):
    partner.rate_limit = "200/m"
    partner.save()

    response = ops.post(
        reverse("admin:partners_partner_change", args=[partner.pk]), change_form(partner, rate_limit=bad)
    )

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["rate_limit"]
    assert bad in error and "100/m" in error and "at least 1" in error
    partner.refresh_from_db()
    assert partner.rate_limit == "200/m"


@pytest.mark.parametrize("good", ["100/m", "5000/h", "90/6s", "1/s", ""])
def test_a_readable_rate_limit_is_saved(good, ops, partner):
    response = ops.post(
        reverse("admin:partners_partner_change", args=[partner.pk]), change_form(partner, rate_limit=good)
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    partner.refresh_from_db()
    assert partner.rate_limit == good


def test_the_add_form_refuses_a_bad_rate_limit_too(superuser):
    response = superuser.post(reverse("admin:partners_partner_add"), add_form(rate_limit="0/m"))

    assert response.status_code == 200 and "100/m" in response.context["adminform"].form.errors["rate_limit"][0]
    assert not Partner.objects.filter(partner_id="OTHERCO01").exists()


def test_the_prefix_is_set_on_the_add_form_and_read_only_after(superuser):
    added = superuser.post(reverse("admin:partners_partner_add"), add_form())
    assert added.status_code == 302, added.context and added.context["adminform"].form.errors
    partner = Partner.objects.get(partner_id="OTHERCO01")

    page = superuser.get(reverse("admin:partners_partner_change", args=[partner.pk]))
    changed = superuser.post(
        reverse("admin:partners_partner_change", args=[partner.pk]), change_form(partner, prefix="NEW")
    )

    assert "prefix" not in page.context["adminform"].form.fields and "OTH" in page.content.decode()
    assert changed.status_code == 302
    partner.refresh_from_db()
    assert partner.prefix == "OTH"
    assert (
        '<td class="field-prefix">OTH</td>'
        in superuser.get(reverse("admin:partners_partner_changelist")).content.decode()
    )


@pytest.mark.parametrize(("prefix", "error"), [("t2", "capital"), ("T2M", "already exists")])
def test_a_bad_or_taken_prefix_is_refused(prefix, error, superuser, partner):
    response = superuser.post(reverse("admin:partners_partner_add"), add_form(prefix=prefix))

    assert response.status_code == 200
    assert error in response.context["adminform"].form.errors["prefix"][0]
