"""Who may see and do what: Support sees customer contact masked and cannot create keys; Ops sees
contact data but no secrets; the groups are made by migrate and making them again changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from orders.models import Order
from partners.models import ApiKey, WebhookSecret
from t2mobile_portal.staff_groups import OPS_GROUP, SUPPORT_GROUP, staff_groups_ensure
from tests.admin.conftest import make_event, make_order, run_action
from tests.factories import WebhookSecretFactory

pytestmark = pytest.mark.django_db


def perms_of(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_migrate_made_both_groups_with_their_action_permissions():
    support, ops = perms_of(SUPPORT_GROUP), perms_of(OPS_GROUP)

    assert {"orders.view_order", "orders.redrive_order", "webhooks.resend_webhook"} <= support
    assert (
        not {
            "orders.view_customer_pii",
            "orders.hold_order",
            "orders.fail_order",
            "partners.add_apikey",
            "orders.change_order",
        }
        & support
    )
    assert "orders.view_customer_pii" not in ops  # masked for everyone but superusers
    assert {
        "orders.redrive_order",
        "orders.hold_order",
        "orders.fail_order",
        "partners.pause_deliveries",
        "catalogue.sync_catalogue",
        "partners.change_apikey",
    } <= ops


def test_neither_group_holds_any_secret_permission():
    for name in (SUPPORT_GROUP, OPS_GROUP):
        perms = perms_of(name)
        assert not {p for p in perms if p.endswith("webhooksecret")}
        assert "partners.add_apikey" not in perms


def test_making_the_groups_again_changes_nothing():
    before = (perms_of(SUPPORT_GROUP), perms_of(OPS_GROUP), Group.objects.count())

    staff_groups_ensure()
    staff_groups_ensure()

    assert (perms_of(SUPPORT_GROUP), perms_of(OPS_GROUP), Group.objects.count()) == before


def test_support_sees_email_and_phone_masked_in_list_and_page(support, partner):
    order = make_order(partner, customer_email="ada.obi@example.com", customer_phone="+2348031234567")

    listing = support.get(reverse("admin:orders_order_changelist")).content.decode()
    page = support.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    for html in (listing, page):
        assert "ada.obi@example.com" not in html and "+2348031234567" not in html
        assert "a***@example.com" in html and "+234803****567" in html


def test_support_sees_payloads_masked_and_no_raw_body(support, partner):
    order = make_order(partner, customer_email="ada.obi@example.com", status=Order.Status.FAILED)
    log = make_event(order)

    page = support.get(reverse("admin:webhooks_webhooklog_change", args=[log.pk])).content.decode()

    assert "ada.obi@example.com" not in page
    assert "a***@example.com" in page


def test_only_a_superuser_sees_the_full_email_and_phone(ops, superuser, partner):
    order = make_order(partner, customer_email="ada.obi@example.com", customer_phone="+2348031234567")
    url = reverse("admin:orders_order_change", args=[order.pk])

    as_ops, as_superuser = ops.get(url).content.decode(), superuser.get(url).content.decode()

    assert "ada.obi@example.com" not in as_ops and "a***@example.com" in as_ops
    assert "ada.obi@example.com" in as_superuser and "+2348031234567" in as_superuser


def test_support_is_not_offered_hold_fail_or_key_actions(support, partner):
    make_order(partner)

    orders = support.get(reverse("admin:orders_order_changelist")).context["action_form"].fields["action"].choices
    partners = support.get(reverse("admin:partners_partner_changelist")).context["action_form"].fields["action"].choices

    assert {name for name, _ in orders} == {"", "redrive_orders", "resend_failed_events"}
    assert {name for name, _ in partners} == {"", "resend_failed_since"}


def test_support_cannot_create_an_api_key_even_by_posting_the_action(support, partner):
    before = ApiKey.objects.count()

    response = run_action(support, "partners_partner", "create_api_key", [partner], confirm=True, name="x")

    assert ApiKey.objects.count() == before
    assert b"t2m_live_" not in response.content


def test_ops_cannot_create_api_keys_nor_see_or_rotate_secrets(ops, partner):
    WebhookSecretFactory(partner=partner, secret="whsec_c2VjcmV0LW9mLXRoZS1wYXJ0bmVy")

    partner_page = ops.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()
    secrets_list = ops.get(reverse("admin:partners_webhooksecret_changelist"))
    actions = ops.get(reverse("admin:partners_partner_changelist")).context["action_form"].fields["action"].choices
    rotated = run_action(ops, "partners_partner", "rotate_webhook_secret", [partner], confirm=True, grace_hours=1)

    assert "whsec_c2Vj" not in partner_page
    assert secrets_list.status_code == 403
    assert {"create_api_key", "rotate_webhook_secret"}.isdisjoint(name for name, _ in actions)
    assert b"whsec_" not in rotated.content and WebhookSecret.objects.filter(partner=partner).count() == 1


def test_support_cannot_edit_partner_webhook_settings(support, partner):
    url = reverse("admin:partners_partner_change", args=[partner.pk])

    support.post(
        url,
        {
            "name": partner.name,
            "webhook_url": "https://evil.example.com/hook",
            "webhook_scheme": partner.webhook_scheme,
            "rate_limit": "",
        },
    )

    partner.refresh_from_db()
    assert partner.webhook_url != "https://evil.example.com/hook"


def test_history_pages_offer_no_delete_or_edit(ops, partner):
    order = make_order(partner, status=Order.Status.FAILED)
    log = make_event(order)

    order_page = ops.get(reverse("admin:orders_order_change", args=[order.pk]))
    deleted = ops.post(reverse("admin:webhooks_webhooklog_delete", args=[log.pk]), {"post": "yes"})

    assert order_page.context["has_change_permission"] is False
    assert order_page.context["has_delete_permission"] is False
    assert deleted.status_code == 403
    assert log.__class__.objects.filter(pk=log.pk).exists()
