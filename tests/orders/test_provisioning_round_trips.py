# ruff: noqa: F811  (pytest fixtures imported from tests.zoho_fixtures are used as arguments)
"""How many SQL statements one order's provisioning costs (the end-to-end latency is mostly round
trips between the worker and PostgreSQL): counted with ``connection.execute_wrapper``, so that a
change that adds some on the path is seen here, not only in ``bench/end_to_end.py``."""

from __future__ import annotations

import pytest
from django.db import connection

from orders.models import Order
from orders.tasks import provision_order
from tests.conftest import place_order as place
from tests.zoho_fixtures import zoho_sandbox  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

#: Statements of one NEW order's first attempt by a new customer, lock to unlock (BEGIN/COMMIT are
#: not counted: Django sends them on the connection, not through the wrapper). 21 before
#: ``order_locked`` read the order, its fulfilment and its partner in one statement; 18 since the
#: activation reference is stored before the sales order is created (issue 20: one UPDATE, so that no
#: later attempt can derive another).
MAX_STATEMENTS = 18


def test_first_attempt_of_a_new_order_stays_within_its_sql_statements(api, product, zoho_sandbox):
    place(api, orderId="T2M-RT-1")  # no worker: the queued job waits; we run it by hand
    order = Order.objects.get(order_id="T2M-RT-1")
    statements: list[str] = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        provision_order.apply(args=[order.pk], throw=True)

    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    assert len(statements) <= MAX_STATEMENTS, "\n".join(sql[:120] for sql in statements)
