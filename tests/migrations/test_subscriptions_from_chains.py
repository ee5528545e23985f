"""A database of the layout before the subscription table (orders 0004, filled the way the old code
left it: a subscription was the NEW order's fulfilment, renewals mirrored it) migrates forward with
one subscription per renewal chain and every provisioned order of a chain pointing at it; run again,
the migration changes nothing but what the old code wrote since; backward, the fulfilments carry
their subscription's expiry again.

The old rows are written through the historical models of that state, as a deployed database holds
them; the checks read them through today's models.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from orders.models import Fulfilment, Order, Subscription

BACKFILL = importlib.import_module("orders.migrations.0005_subscriptions_from_renewal_chains")
BEFORE = ("orders", "0004_subscription")
OUR_APPS = {"orders", "webhooks", "integrations", "partners", "catalogue"}
LAGOS = ZoneInfo("Africa/Lagos")
T0 = datetime(2026, 1, 10, 9, 0, tzinfo=LAGOS)
MONTH = timedelta(days=30)


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return [key for key in executor.loader.graph.leaf_nodes() if key[0] in OUR_APPS]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _before_layout() -> list[tuple[str, str]]:
    return [BEFORE if app == "orders" else (app, name) for app, name in _latest()]


class OldRows:
    """Orders and fulfilments as the code before the subscription table wrote them."""

    def __init__(self, apps, first: int = 0):
        self.Order = apps.get_model("orders", "Order")
        self.Fulfilment = apps.get_model("orders", "Fulfilment")
        self.Partner = apps.get_model("partners", "Partner")
        self.count = first

    def order(self, partner, *, renewal_of=None, status="FULFILLED", fulfilment="ACTIVE", reference="", **times):
        self.count += 1
        order = self.Order.objects.create(
            partner=partner,
            order_id=f"MIG-{self.count}",
            type="RENEWAL" if renewal_of else "NEW",
            renewal_of=renewal_of,
            customer_id=renewal_of.customer_id if renewal_of else f"CUST-MIG-{self.count}",
            customer_name="Ada Obi",
            customer_email="ada@example.com",
            customer_phone="+2348031234567",
            product_id="4815000000044208",
            tenure="1_MONTH",
            unit_price=Decimal("1500.00"),
            status=status,
            idempotency_key=f"mig-key-{self.count}",
            activation_reference=reference if status == "FULFILLED" else "",
        )
        self.Fulfilment.objects.create(
            order=order,
            status=fulfilment,
            activation_reference=times.pop("fulfilment_reference", reference if status == "FULFILLED" else ""),
            starts_at=times.get("starts_at"),
            expires_at=times.get("expires_at"),
        )
        return order


def _fill(apps) -> dict:
    rows = OldRows(apps)
    partner = rows.Partner.objects.create(partner_id="MIGRATE01", name="Migrating partner", prefix="MIGA")
    other_partner = rows.Partner.objects.create(partner_id="MIGRATE02", name="Another partner", prefix="MIGB")
    # A: NEW + two renewals, the second a renewal of the first; the latest expiry is the last one's.
    a_new = rows.order(partner, reference="ACT-A", starts_at=T0, expires_at=T0 + MONTH)
    a_r1 = rows.order(partner, renewal_of=a_new, reference="ACT-A", starts_at=T0, expires_at=T0 + 2 * MONTH)
    a_r2 = rows.order(partner, renewal_of=a_r1, reference="ACT-A", starts_at=T0, expires_at=T0 + 3 * MONTH)
    # A renewal of A still being provisioned, and one that failed: no subscription until provisioned.
    a_processing = rows.order(partner, renewal_of=a_r2, status="PROCESSING", fulfilment="PENDING")
    a_failed = rows.order(partner, renewal_of=a_new, status="FAILED", fulfilment="FAILED")
    # B: expired long ago, with a renewal that expired too.
    b_new = rows.order(partner, reference="ACT-B", fulfilment="EXPIRED", starts_at=T0, expires_at=T0 + MONTH)
    b_r1 = rows.order(
        partner, renewal_of=b_new, reference="ACT-B", fulfilment="EXPIRED", starts_at=T0, expires_at=T0 + 2 * MONTH
    )
    # C: the reference only on the order; renewed after it had expired (its renewal is ACTIVE).
    c_new = rows.order(
        partner, reference="ACT-C", fulfilment="EXPIRED", fulfilment_reference="", starts_at=T0, expires_at=T0
    )
    c_r1 = rows.order(partner, renewal_of=c_new, reference="ACT-C", starts_at=T0, expires_at=T0 + 5 * MONTH)
    # D: a NEW order that failed: no subscription. E: the same reference as A, at another partner.
    d_failed = rows.order(partner, status="FAILED", fulfilment="FAILED")
    e_new = rows.order(other_partner, reference="ACT-A", starts_at=T0, expires_at=T0 + MONTH)
    return {
        "A": [a_new.pk, a_r1.pk, a_r2.pk],
        "B": [b_new.pk, b_r1.pk],
        "C": [c_new.pk, c_r1.pk],
        "E": [e_new.pk],
        "not provisioned": [a_processing.pk, a_failed.pk, d_failed.pk],
    }


def _subscription_of(chain: list[int]) -> Subscription:
    subscription = Subscription.objects.get(origin_order_id=chain[0])
    assert sorted(Order.objects.filter(subscription=subscription).values_list("pk", flat=True)) == sorted(chain)
    return subscription


def _backfill_again() -> None:
    apps = MigrationExecutor(connection).loader.project_state(("orders", "0005_subscriptions_from_renewal_chains")).apps
    with connection.schema_editor() as schema_editor:
        BACKFILL.subscriptions_from_chains(apps, schema_editor)


def _snapshot() -> list[tuple]:
    return list(
        Subscription.objects.order_by("pk").values_list("pk", "origin_order_id", "status", "starts_at", "expires_at")
    ) + list(Order.objects.order_by("pk").values_list("pk", "subscription_id"))


@pytest.mark.django_db(transaction=True)
def test_one_subscription_per_renewal_chain_and_every_provisioned_order_points_at_it():
    latest = _latest()
    try:
        made = _fill(_migrate(_before_layout()))

        _migrate(latest)

        a, b, c, e = (_subscription_of(made[chain]) for chain in ("A", "B", "C", "E"))
        assert Subscription.objects.count() == 4
        assert (a.status, a.starts_at, a.expires_at, a.activation_reference) == ("ACTIVE", T0, T0 + 3 * MONTH, "ACT-A")
        assert (a.partner.partner_id, a.customer_id, a.product_id) == ("MIGRATE01", "CUST-MIG-1", "4815000000044208")
        assert (b.status, b.expires_at) == ("EXPIRED", T0 + 2 * MONTH)
        assert (c.status, c.expires_at, c.activation_reference) == ("ACTIVE", T0 + 5 * MONTH, "ACT-C")
        assert (e.partner.partner_id, e.activation_reference) == ("MIGRATE02", "ACT-A")
        assert (
            list(Order.objects.filter(pk__in=made["not provisioned"]).values_list("subscription", flat=True))
            == [None] * 3
        )
        # The fulfilments are left as they were.
        assert Fulfilment.objects.get(order_id=made["A"][0]).expires_at == T0 + MONTH
    finally:
        _migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_run_again_it_changes_nothing_but_what_the_old_code_wrote_since():
    latest = _latest()
    try:
        made = _fill(_migrate(_before_layout()))
        _migrate(latest)
        before = _snapshot()

        _backfill_again()
        assert _snapshot() == before

        # A worker of the previous release fulfils a renewal of A after the migration: it mirrors the
        # new expiry into the fulfilments and knows no subscription.
        rows = OldRows(_migrate(latest), first=100)
        last_renewal = rows.Order.objects.get(pk=made["A"][2])
        a_r3 = rows.order(
            last_renewal.partner, renewal_of=last_renewal, reference="ACT-A", starts_at=T0, expires_at=T0 + 4 * MONTH
        )
        _backfill_again()

        a = _subscription_of(made["A"] + [a_r3.pk])
        assert (a.status, a.expires_at) == ("ACTIVE", T0 + 4 * MONTH)
        assert Subscription.objects.count() == 4
    finally:
        _migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_backward_the_fulfilments_of_a_chain_carry_its_subscription_again():
    latest = _latest()
    try:
        made = _fill(_migrate(_before_layout()))
        _migrate(latest)

        old_apps = _migrate(_before_layout())

        fulfilments = old_apps.get_model("orders", "Fulfilment").objects
        assert {f.expires_at for f in fulfilments.filter(order_id__in=made["A"])} == {T0 + 3 * MONTH}
        assert {f.status for f in fulfilments.filter(order_id__in=made["C"])} == {"ACTIVE"}
        assert old_apps.get_model("orders", "Subscription").objects.count() == 0
        assert fulfilments.get(order_id=made["not provisioned"][0]).status == "PENDING"
    finally:
        _migrate(latest)
