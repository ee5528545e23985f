"""The run lock of provisioning: one run works on an order at a time.

A session-level PostgreSQL advisory lock per order (``pg_try_advisory_lock``): a duplicate run exits
at once instead of waiting, and a killed worker's connection closes and frees it. ``orders_locked``
reads PostgreSQL's lock table, so the sweeper can tell a running attempt from a dead one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection

from core.redis_roles import limits

#: A running attempt pushes ``next_attempt_at`` this far ahead: if its worker dies, the sweeper
#: queues the order again after this.
RUNNING_LEASE = timedelta(minutes=15)
_ADVISORY_NAMESPACE = 0x5052 << 48  # "PR", keeps these keys apart from other advisory locks
_ADVISORY_ORDER_BITS = (1 << 48) - 1


def provisioning_lock_key(order_pk: int) -> int:
    return _ADVISORY_NAMESPACE | (order_pk & _ADVISORY_ORDER_BITS)


def orders_locked() -> set[int]:
    """The order pks whose provisioning lock some session holds now (PostgreSQL's lock table: a
    killed worker's session is gone from it as soon as its connection closes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
            WHERE locktype = 'advisory' AND objsubid = 1 AND granted
              AND classid::bigint >> 16 = %s
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """,
            [_ADVISORY_NAMESPACE >> 48],
        )
        return {key & _ADVISORY_ORDER_BITS for (key,) in cursor.fetchall()}


@contextmanager
def provisioning_lock(order_pk: int) -> Iterator[bool]:
    """True when this run may work on the order; False when another run holds it."""
    if connection.vendor == "postgresql":
        key = provisioning_lock_key(order_pk)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    # SQLite (``make run`` without PostgreSQL): a cache lock with the lease as its lifetime.
    lock_key = f"provisioning:lock:{order_pk}"
    held = limits.add(lock_key, 1, timeout=int(RUNNING_LEASE.total_seconds()))
    try:
        yield held
    finally:
        if held:
            limits.delete(lock_key)
