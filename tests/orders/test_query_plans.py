"""The plans of intake's statements on a database without statistics (fresh, or just restored).

The rows are made inside the test's transaction, which autovacuum cannot see, and nothing runs
ANALYZE: PostgreSQL plans from table sizes alone, as it does after a restore. On such a database it
cannot tell two indexes that lead with the same column apart (both look like "one row") and takes
the smaller, so a lookup must not leave it that choice: the statements of one POST /fulfilment are
read back from the test database and EXPLAINed as they were sent.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import IdempotencyRecord, Order
from tests.conftest import order_payload
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def plan_of(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        document = cursor.fetchone()[0]
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def indexes_on(table: str, leading_column: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
            "WHERE x.indrelid = %s::regclass AND a.attname = %s",
            [table, leading_column],
        )
        return {row[0] for row in cursor.fetchall()}


def unique_indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND x.indisunique",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


def scans_of(statements: list[str], table: str) -> list[dict]:
    """Every scan node on ``table`` in the plans of the SELECTs that read it."""
    found = []
    for sql in statements:
        if sql.startswith("SELECT") and f'"{table}"' in sql:
            found += [node for node in nodes(plan_of(sql)) if node.get("Relation Name") == table]
    return found


def conflict_skipping_insert(statements: list[str], table: str) -> dict:
    """The plan of the one INSERT … ON CONFLICT DO NOTHING into ``table``: without a conflict
    target, every unique index of the table decides, and no index is left to the planner."""
    inserts = [sql for sql in statements if sql.startswith(f'INSERT INTO "{table}"')]
    assert len(inserts) == 1, inserts
    plan = plan_of(inserts[0])
    assert plan["Operation"] == "Insert" and plan["Conflict Resolution"] == "NOTHING", plan
    assert [node for node in nodes(plan) if "Scan" in node["Node Type"]] == [], plan
    return plan


@pytest.fixture
def unanalysed_rows(partner, product):
    """Orders and idempotency records of two partners in tables as new as after a restore: emptied
    with TRUNCATE (new files, indexes built afresh, whatever earlier tests left), never analysed.
    All inside the test's transaction, which autovacuum cannot see and which is rolled back."""
    with connection.cursor() as cursor:
        cursor.execute('TRUNCATE "t2mobile_idempotency_records", "t2mobile_orders" CASCADE')
    other = PartnerFactory()
    now = timezone.now()
    for owner in (partner, other):
        Order.objects.bulk_create(
            Order(
                partner=owner,
                order_id=f"OLD-{i}",
                idempotency_key=f"old-key-{i}",
                customer_id=f"CUST-{i}",
                customer_name="Ada Obi",
                customer_email="ada@example.com",
                customer_phone="+2348031234567",
                product_id=product.item_id,
                tenure="12_MONTHS",
                unit_price=15000,
            )
            for i in range(300)
        )
        IdempotencyRecord.objects.bulk_create(
            IdempotencyRecord(
                partner=owner,
                key=f"old-key-{i}",
                fingerprint="0" * 64,
                status=IdempotencyRecord.Status.DONE,
                response_status=202,
                response_body={},
                expires_at=now + timedelta(hours=1),
            )
            for i in range(300)
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename IN ('t2mobile_orders', 't2mobile_idempotency_records')"
        )
        assert cursor.fetchone()[0] == 0, "the tables have statistics: this test needs a database without"


@pytest.fixture
def intake_statements(api, unanalysed_rows) -> list[str]:
    """The SQL of one accepted POST /t2mobile/fulfilment, with its parameters in place."""
    with CaptureQueriesContext(connection) as captured:
        response = api.post(
            "/t2mobile/fulfilment",
            data=json.dumps(order_payload(orderId="T2M-PLAN-1")),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="plan-key-1",
        )
    assert response.status_code == 202, response.content
    return [query["sql"] for query in captured.captured_queries]


def test_api_key_lookup_uses_the_prefix_index(intake_statements):
    scans = scans_of(intake_statements, "t2mobile_api_keys")

    assert scans, "no API key lookup was made"
    assert {scan.get("Index Name") for scan in scans} <= indexes_on("t2mobile_api_keys", "prefix")


def test_published_plan_lookup_uses_the_unique_item_id_and_product_tenure_indexes(intake_statements):
    products = scans_of(intake_statements, "t2mobile_products")
    plans = scans_of(intake_statements, "t2mobile_product_plans")

    assert products and plans, "no published-plan lookup was made"
    assert {scan.get("Index Name") for scan in products} <= indexes_on("t2mobile_products", "item_id")
    assert {scan.get("Index Name") for scan in plans} == {"product_plan_unique_tenure"}
    assert all("tenure" in scan.get("Index Cond", "") for scan in plans)


def test_idempotency_record_lookup_uses_the_unique_partner_key_index(intake_statements):
    scans = scans_of(intake_statements, "t2mobile_idempotency_records")

    assert scans, "no idempotency record lookup was made"
    assert {scan.get("Index Name") for scan in scans} == {"idempotency_unique_partner_key"}
    assert all("key" in scan["Index Cond"] for scan in scans)


def test_order_id_and_key_clashes_are_decided_by_the_two_unique_indexes(intake_statements):
    conflict_skipping_insert(intake_statements, "t2mobile_orders")

    assert unique_indexes("t2mobile_orders") == {
        "t2mobile_orders_pkey",
        "order_unique_partner_order_id",
        "order_unique_partner_idempotency_key",
    }
    assert not scans_of(intake_statements, "t2mobile_orders"), "an accepted order needs no lookup"


def test_no_statement_of_an_intake_reads_a_whole_table(intake_statements):
    for sql in intake_statements:
        if sql.startswith(("INSERT", "UPDATE", "SELECT")):
            for node in nodes(plan_of(sql)):
                assert node["Node Type"] != "Seq Scan", (sql, node)


def test_every_query_by_partner_still_has_an_index_that_leads_with_it(db):
    # The order list (GET /t2mobile/orders), the admin's partner filter, the PROTECT check.
    assert indexes_on("t2mobile_orders", "partner_id") >= {
        "order_unique_partner_order_id",
        "order_unique_partner_idempotency_key",
        "order_partner_customer_idx",
    }
