# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""Onboarding a second partner from the admin, as docs/admin.md tells it, with no deploy: the
partner with its prefix, an API key shown once, a signing secret shown once, the endpoint URL
checked, a rate limit; then the new partner orders from the shared catalogue with its key and its
events reach its own endpoint, signed with the secret it was shown.

Everything runs through the real admin views (Django's test client, as a superuser) and the real
partner API. Two steps that a worker does in production run in this process instead: provisioning
(``order_provision`` against the Zoho sandbox, a SIMULATED Zoho, as tests/orders/ do) and delivery
(``event_deliver``, the body of the ``webhooks.deliver_webhook`` task) to a real local HTTP receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from orders.models import Order
from orders.provisioning import order_provision
from partners.models import Partner, WebhookSecret
from partners.services import secret_generate
from tests.admin.conftest import run_action
from tests.conftest import place_order
from tests.webhooks.conftest import Received, serving_receiver
from tests.zoho_fixtures import zoho_sandbox  # noqa: F401
from webhooks.delivery import DeliveryOutcome, event_deliver
from webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db

INLINES_EMPTY = {
    f"{inline}-{count}": "0" for inline in ("api_keys", "webhook_secrets") for count in ("TOTAL_FORMS", "INITIAL_FORMS")
}


def shown_once(page: str, prefix: str) -> str:
    """The secret on a "shown once" page (the read-only input's value)."""
    start = page.index(f'value="{prefix}') + len('value="')
    return page[start : page.index('"', start)]


def verified(request: Received, secret: str) -> bool:
    """The receiver's check, written from the Standard Webhooks specification (not our signing code):
    HMAC-SHA256 of ``id.timestamp.body`` under the base64-decoded secret, one of the ``v1,`` values."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [value.removeprefix("v1,") for value in request.headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(expected, value) for value in offered)


def partner_form(partner: Partner, **fields) -> dict:
    values = {
        "name": partner.name,
        "webhook_url": partner.webhook_url,
        "webhook_scheme": partner.webhook_scheme,
        "rate_limit": partner.rate_limit,
    }
    return {**values, **INLINES_EMPTY, **fields}


def test_a_second_partner_is_onboarded_from_the_admin_and_its_events_reach_its_endpoint(
    superuser, partner, product, zoho_sandbox
):
    # T2Mobile is already live, with its own endpoint and secret
    t2mobile_secret = secret_generate()
    WebhookSecret.objects.create(partner=partner, secret=t2mobile_secret)
    with serving_receiver() as theirs, serving_receiver() as t2mobile:
        partner.webhook_url = t2mobile.url
        partner.save()

        # 1. Add the partner with its prefix and rate limit
        added = superuser.post(
            reverse("admin:partners_partner_add"),
            {
                "partner_id": "OTHERCO01",
                "prefix": "OTH",
                "name": "OtherCo",
                "webhook_url": "",
                "webhook_scheme": "standard-webhooks-v1",
                "rate_limit": "50/m",
                **INLINES_EMPTY,
            },
        )
        assert added.status_code == 302, added.context and added.context["adminform"].form.errors
        other = Partner.objects.get(partner_id="OTHERCO01")
        assert (other.prefix, other.rate_limit) == ("OTH", "50/m")
        change_url = reverse("admin:partners_partner_change", args=[other.pk])

        # 2. Create its API key: shown once
        created = run_action(
            superuser, "partners_partner", "create_api_key", [other], confirm=True, name="OtherCo prod"
        )
        api_key = shown_once(created.content.decode(), "t2m_live_")

        # 3. Create its signing secret: shown once
        rotated = run_action(
            superuser, "partners_partner", "rotate_webhook_secret", [other], confirm=True, grace_hours=0
        )
        signing_secret = shown_once(rotated.content.decode(), "whsec_")
        page = superuser.get(change_url).content.decode()
        assert api_key not in page and signing_secret not in page and "OTH" in page

        # 4. Set its endpoint URL: the URL guard refuses one that parsers read differently
        refused = superuser.post(change_url, partner_form(other, webhook_url="https://user@hooks.other.example/in"))
        assert refused.status_code == 200 and refused.context["adminform"].form.errors["webhook_url"]
        saved = superuser.post(change_url, partner_form(other, webhook_url=theirs.url))
        assert saved.status_code == 302, saved.context and saved.context["adminform"].form.errors
        other.refresh_from_db()
        assert other.webhook_url == theirs.url

        # The new partner calls the API with its key: the shared catalogue, under its own name
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        products = api.get("/t2mobile/products").json()
        assert products["partnerId"] == "OTHERCO01" and products["products"][0]["productId"] == product.item_id

        # It checks its endpoint and verifier with a PING
        ping = api.post("/t2mobile/webhooks/test", content_type="application/json")
        assert ping.status_code == 202
        ping_log = WebhookLog.objects.get(event_id=ping.json()["id"])
        assert event_deliver(log_pk=ping_log.pk) == DeliveryOutcome.SENT

        # and places an order, which is provisioned in Zoho under its prefix and announced
        place_order(api, orderId="OC-1001", customerId="OC-CUST-1")
        order = Order.objects.get(partner=other, order_id="OC-1001")
        order_provision(order_pk=order.pk)
        order.refresh_from_db()
        assert order.status == Order.Status.FULFILLED, order.fulfilment.last_error
        assert zoho_sandbox.sales_order_numbered("OTH-OC-1001") is not None
        fulfilled = WebhookLog.objects.get(order=order, event_type=WebhookLog.EventType.ORDER_FULFILLED)
        assert event_deliver(log_pk=fulfilled.pk) == DeliveryOutcome.SENT

        # Then both events reached the new partner's endpoint, signed with the secret it was shown
        ping_request, order_request = theirs.wait_for(2)
        assert [r.event_id for r in (ping_request, order_request)] == [ping_log.event_id, fulfilled.event_id]
        assert all(verified(r, signing_secret) for r in (ping_request, order_request))
        assert not any(verified(r, t2mobile_secret) for r in (ping_request, order_request))
        event = json.loads(order_request.body)
        assert (event["type"], event["partnerId"], event["data"]["orderId"]) == (
            "ORDER_FULFILLED",
            "OTHERCO01",
            "OC-1001",
        )
        assert event["data"]["activationReference"] == order.activation_reference
        assert json.loads(ping_request.body)["type"] == "PING"
        # and nothing of it reached T2Mobile's
        assert t2mobile.received == []
