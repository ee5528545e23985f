"""One subscription per renewal chain, from the orders and fulfilments already there.

Before this, a subscription was the fulfilment of a NEW order and every RENEWAL's fulfilment
mirrored its expiry. Every NEW order whose fulfilment is ACTIVE or EXPIRED opens one subscription:
partner, customer and product of the order, the activation reference of the fulfilment (else of
the order), ``starts_at`` of the NEW fulfilment, ``expires_at`` the latest expiry across the chain,
ACTIVE if any fulfilment of the chain is ACTIVE, else EXPIRED. The NEW order and every provisioned
renewal of its chain (renewals of renewals too) point at it; an order not provisioned (PROCESSING,
PENDING, FAILED) keeps ``subscription`` NULL, as the provisioning code leaves it.

Set-based SQL in three statements (a recursive walk of ``renewal_of`` into a temporary table, one
INSERT, one UPDATE), so a million orders take seconds, not a row at a time. ``updated_at`` of the
orders is left alone: the partner's ``updatedSince`` filter must not see every order change.

Idempotent and convergent: run again, it adds the chains that have no subscription yet, points the
orders that do not point at theirs, and moves a subscription's expiry forward (ACTIVE again) only
when a fulfilment of its chain expires later than it, which only the old code can have written
(e.g. a worker of the previous release fulfilling a renewal between this migration and its
restart). Two NEW orders of a partner with the same activation reference stop it with the unique
constraint's error, naming the key: nothing is merged silently.

Backward restores what the old code reads: every provisioned fulfilment of a chain carries its
subscription's expiry and status again, the orders' pointers are cleared and the subscriptions
deleted (0004 backward then drops the table).
"""

from django.db import migrations

PROVISIONED = "('ACTIVE', 'EXPIRED')"


def _tables(apps) -> dict[str, str]:
    return {
        "orders": apps.get_model("orders", "Order")._meta.db_table,
        "fulfilments": apps.get_model("orders", "Fulfilment")._meta.db_table,
        "subscriptions": apps.get_model("orders", "Subscription")._meta.db_table,
    }


CHAINS = """
DROP TABLE IF EXISTS pg_temp.subscription_chain;
CREATE TEMPORARY TABLE subscription_chain ON COMMIT DROP AS
WITH RECURSIVE chain (root_id, order_id, status, expires_at) AS (
    SELECT o.id, o.id, f.status, f.expires_at
    FROM {orders} o JOIN {fulfilments} f ON f.order_id = o.id
    WHERE o.type = 'NEW' AND f.status IN {provisioned}
  UNION
    SELECT chain.root_id, r.id, f.status, f.expires_at
    FROM chain
    JOIN {orders} r ON r.renewal_of_id = chain.order_id AND r.type = 'RENEWAL'
    JOIN {fulfilments} f ON f.order_id = r.id AND f.status IN {provisioned}
)
SELECT * FROM chain;
CREATE INDEX ON subscription_chain (root_id);
ANALYZE subscription_chain;
"""

SUBSCRIPTIONS = """
INSERT INTO {subscriptions} AS s (
    partner_id, customer_id, product_id, activation_reference, origin_order_id,
    status, starts_at, expires_at, created_at, updated_at
)
SELECT o.partner_id, o.customer_id, o.product_id,
       COALESCE(NULLIF(f.activation_reference, ''), o.activation_reference), o.id,
       CASE WHEN chain.any_active THEN 'ACTIVE' ELSE 'EXPIRED' END,
       COALESCE(f.starts_at, o.created_at), chain.expires_at, now(), now()
FROM (
    SELECT root_id, bool_or(status = 'ACTIVE') AS any_active, max(expires_at) AS expires_at
    FROM subscription_chain GROUP BY root_id
) chain
JOIN {orders} o ON o.id = chain.root_id
JOIN {fulfilments} f ON f.order_id = o.id
ON CONFLICT (origin_order_id) DO UPDATE
    SET expires_at = EXCLUDED.expires_at, status = EXCLUDED.status, updated_at = now()
    WHERE EXCLUDED.expires_at > s.expires_at
"""

POINTERS = """
UPDATE {orders} o SET subscription_id = s.id
FROM subscription_chain chain JOIN {subscriptions} s ON s.origin_order_id = chain.root_id
WHERE o.id = chain.order_id AND o.subscription_id IS DISTINCT FROM s.id
"""

MIRRORED = """
UPDATE {fulfilments} f SET expires_at = s.expires_at, status = s.status
FROM {orders} o JOIN {subscriptions} s ON s.id = o.subscription_id
WHERE f.order_id = o.id AND f.status IN {provisioned}
  AND (f.expires_at IS DISTINCT FROM s.expires_at OR f.status <> s.status);
UPDATE {orders} SET subscription_id = NULL WHERE subscription_id IS NOT NULL;
DELETE FROM {subscriptions};
"""


def _subscriptions_from_chains_orm(apps) -> None:
    """The same, row by row, for the SQLite database of ``make run`` (small by nature; the SQL above
    is PostgreSQL's)."""
    order_model = apps.get_model("orders", "Order")
    fulfilment_model = apps.get_model("orders", "Fulfilment")
    subscription_model = apps.get_model("orders", "Subscription")
    provisioned = ("ACTIVE", "EXPIRED")
    for root in order_model.objects.filter(type="NEW", fulfilment__status__in=provisioned):
        chain, frontier = [root], [root]
        while frontier:
            frontier = list(
                order_model.objects.filter(renewal_of__in=frontier, type="RENEWAL", fulfilment__status__in=provisioned)
            )
            chain += frontier
        periods = list(fulfilment_model.objects.filter(order__in=chain).values_list("status", "expires_at"))
        expiries = [expires for _, expires in periods if expires is not None]
        root_fulfilment = fulfilment_model.objects.get(order=root)
        subscription, _ = subscription_model.objects.update_or_create(
            origin_order=root,
            defaults={
                "partner_id": root.partner_id,
                "customer_id": root.customer_id,
                "product_id": root.product_id,
                "activation_reference": root_fulfilment.activation_reference or root.activation_reference,
                "status": "ACTIVE" if any(status == "ACTIVE" for status, _ in periods) else "EXPIRED",
                "starts_at": root_fulfilment.starts_at or root.created_at,
                "expires_at": max(expiries) if expiries else root_fulfilment.expires_at,
            },
        )
        order_model.objects.filter(pk__in=[order.pk for order in chain]).update(subscription=subscription)


def subscriptions_from_chains(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        _subscriptions_from_chains_orm(apps)
        return
    tables = _tables(apps)
    with schema_editor.connection.cursor() as cursor:
        for sql in (CHAINS, SUBSCRIPTIONS, POINTERS):
            cursor.execute(sql.format(provisioned=PROVISIONED, **tables))
        cursor.execute("DROP TABLE pg_temp.subscription_chain")


def fulfilments_mirror_subscriptions(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        for subscription in apps.get_model("orders", "Subscription").objects.all():
            apps.get_model("orders", "Fulfilment").objects.filter(
                order__subscription=subscription, status__in=("ACTIVE", "EXPIRED")
            ).update(expires_at=subscription.expires_at, status=subscription.status)
        apps.get_model("orders", "Order").objects.filter(subscription__isnull=False).update(subscription=None)
        apps.get_model("orders", "Subscription").objects.all().delete()
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(MIRRORED.format(provisioned=PROVISIONED, **_tables(apps)))


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_subscription"),
    ]

    operations = [
        migrations.RunPython(subscriptions_from_chains, fulfilments_mirror_subscriptions),
    ]
