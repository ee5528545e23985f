"""A database filled under the layout before the partners and catalogue apps (orders 0002, webhooks
0002, integrations 0001) migrates forward with every row where the new models look for it.

The old rows are written through the historical models of that state, as a deployed database holds
them; the checks read them through today's models.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from catalogue.models import CatalogueSync, Product, ProductPlan
from orders.models import Fulfilment, IdempotencyRecord, Order, ZohoContact
from partners.models import ApiKey, Partner, WebhookSecret
from webhooks.models import WebhookAttempt, WebhookLog

OLD_LAYOUT = [
    ("partners", None),  # not there yet: every migration of the app unapplied
    ("catalogue", None),
    ("orders", "0002_fulfilment_attempt_running"),
    ("webhooks", "0002_endpoint_state_and_purge_index"),
    ("integrations", "0001_initial"),
]
OUR_APPS = {"orders", "webhooks", "integrations", "partners", "catalogue"}


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def _latest():
    executor = MigrationExecutor(connection)
    return [key for key in executor.loader.graph.leaf_nodes() if key[0] in OUR_APPS]


def _fill_old_layout(apps) -> dict:
    now = timezone.now()
    partner = apps.get_model("orders", "Partner").objects.create(partner_id="OLDLAYOUT1", name="Old layout partner")
    apps.get_model("orders", "ApiKey").objects.create(partner=partner, prefix="t2m_live_old", hash="a" * 64)
    apps.get_model("webhooks", "WebhookSecret").objects.create(partner=partner, secret="whsec_b2xkLWxheW91dA==")
    product = apps.get_model("orders", "Product").objects.create(item_id="9001", name="Zoho Mail Lite", rate=1000)
    apps.get_model("orders", "ProductPlan").objects.create(product=product, tenure="12_MONTHS", price=Decimal("12000"))
    order = apps.get_model("orders", "Order").objects.create(
        partner=partner,
        order_id="OLD-ORDER-1",
        customer_id="CUST-OLD",
        customer_name="Ada Old",
        customer_email="ada.old@example.com",
        customer_phone="+2348030000001",
        product_id="9001",
        tenure="12_MONTHS",
        unit_price=Decimal("12000"),
        status="FULFILLED",
        idempotency_key="old-key-1",
        activation_reference="ACT-OLD-1",
        zoho_sales_order_id="SO-OLD-1",
    )
    apps.get_model("orders", "Fulfilment").objects.create(
        order=order,
        status="ACTIVE",
        activation_reference="ACT-OLD-1",
        sales_order_id="SO-OLD-1",
        starts_at=now,
        expires_at=now + timedelta(days=365),
    )
    apps.get_model("orders", "IdempotencyRecord").objects.create(
        partner=partner,
        key="old-key-1",
        fingerprint="f" * 64,
        status="DONE",
        response_status=202,
        response_body={"success": True},
        expires_at=now + timedelta(hours=72),
    )
    log = apps.get_model("webhooks", "WebhookLog").objects.create(
        event_id="evt_oldlayout1",
        partner=partner,
        event_type="ORDER_FULFILLED",
        order=order,
        payload={"orderId": "OLD-ORDER-1"},
        body='{"orderId":"OLD-ORDER-1"}',
        status="SENT",
    )
    apps.get_model("webhooks", "WebhookAttempt").objects.create(log=log, status_code=200, duration_ms=12)
    apps.get_model("integrations", "ZohoContact").objects.create(
        partner=partner, customer_id="CUST-OLD", contact_id="C-OLD"
    )
    apps.get_model("integrations", "CatalogueSync").objects.create(started_at=now, status="DONE", items_seen=1)
    # contenttypes and auth are not ours: their models are the same in both layouts.
    partner_type, _ = ContentType.objects.get_or_create(app_label="orders", model="partner")
    permission = Permission.objects.create(
        content_type=partner_type, codename="old_layout_check", name="a permission granted under the old layout"
    )
    return {"order_pk": order.pk, "partner_pk": partner.pk, "permission_pk": permission.pk}


@pytest.mark.django_db(transaction=True)
def test_a_database_of_the_old_layout_migrates_forward_with_every_row():
    latest = _latest()
    try:
        old_apps = _migrate(OLD_LAYOUT)
        made = _fill_old_layout(old_apps)

        _migrate(latest)

        partner = Partner.objects.get(pk=made["partner_pk"])
        order = Order.objects.select_related("partner", "fulfilment").get(pk=made["order_pk"])
        assert order.partner == partner and order.fulfilment.activation_reference == "ACT-OLD-1"
        assert ApiKey.objects.get(partner=partner).prefix == "t2m_live_old"
        assert WebhookSecret.objects.get(partner=partner).secret == "whsec_b2xkLWxheW91dA=="
        assert ProductPlan.objects.get(product__item_id="9001").price == Decimal("12000.00")
        assert Product.objects.filter(item_id="9001").count() == 1
        assert IdempotencyRecord.objects.get(partner=partner, key="old-key-1").response_status == 202
        log = WebhookLog.objects.get(event_id="evt_oldlayout1")
        assert log.order == order and log.partner == partner
        assert WebhookAttempt.objects.get(log=log).status_code == 200
        assert ZohoContact.objects.get(partner=partner, customer_id="CUST-OLD").contact_id == "C-OLD"
        assert CatalogueSync.objects.filter(items_seen=1).count() == 1
        assert Fulfilment.objects.filter(order=order).count() == 1
        # A permission granted on the partner model under the old layout follows the model.
        moved = Permission.objects.select_related("content_type").get(pk=made["permission_pk"])
        assert (moved.content_type.app_label, moved.content_type.model) == ("partners", "partner")
    finally:
        _migrate(latest)
