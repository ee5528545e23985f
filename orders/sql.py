"""The order flow's hand-written SQL: the writes of one intake, where building each statement with
the ORM cost about ten times the database's own work (issue 14: ~1 ms of Python per query against
~0.1 ms for the round trip). The rules these statements serve stay in Python with their callers:

- ``row_insert(…, skip_conflict=True)`` of an ``IdempotencyRecord`` claims a key for
  ``orders.idempotency.idempotent_answer`` (one answer per (partner, key));
- ``row_insert(…, skip_conflict=True)`` of an ``Order`` is the (partner, orderId) and
  (partner, key) uniqueness of ``orders.intake.order_accept``: the unique indexes decide, and a
  taken orderId or key is answered there;
- ``idempotency_answer_store`` stores the answer that ``idempotent_answer`` replays.

``INSERT … ON CONFLICT DO NOTHING RETURNING`` is the same on PostgreSQL and SQLite (``make run``),
the columns come from the models and the values are prepared by the fields themselves, so there is
one code path and nothing to keep in step by hand. On PostgreSQL the unique indexes are the
conflict arbiters: the planner has no index to choose, with or without statistics.
"""

from __future__ import annotations

import functools

from django.db import connection
from django.db.models import Model

from orders.models import IdempotencyRecord


@functools.cache
def _insert_statement(model: type[Model], skip_conflict: bool) -> tuple[str, tuple]:
    quote = connection.ops.quote_name
    meta = model._meta
    fields = tuple(field for field in meta.concrete_fields if not field.primary_key)
    columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    conflict = " ON CONFLICT DO NOTHING" if skip_conflict else ""
    # Only names from the model's meta are formatted in; every value is a bound parameter.
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({values}){conflict}"  # noqa: S608
    return f"{sql} RETURNING {quote(meta.pk.column)}", fields


def row_insert(obj: Model, *, skip_conflict: bool = False) -> bool:
    """INSERT ``obj`` (an unsaved instance, its defaults and ``auto_now`` fields filled as ``save()``
    fills them) and set its primary key. With ``skip_conflict``, a row that would break a unique
    constraint is not written and False is returned (PostgreSQL waits for a concurrent insert of
    the same values to commit or roll back before it decides)."""
    sql, fields = _insert_statement(type(obj), skip_conflict)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True


@functools.cache
def _answer_statement() -> str:
    quote = connection.ops.quote_name
    meta = IdempotencyRecord._meta
    column = {name: quote(meta.get_field(name).column) for name in ("status", "response_status", "response_body")}
    return (
        f"UPDATE {quote(meta.db_table)} SET {column['status']} = %s, {column['response_status']} = %s, "  # noqa: S608
        f"{column['response_body']} = %s WHERE {quote(meta.pk.column)} = %s"
    )


def idempotency_answer_store(*, record_pk: int, status_code: int, body: dict) -> None:
    """The claimed record of ``record_pk`` becomes DONE with the answer to replay."""
    body_field = IdempotencyRecord._meta.get_field("response_body")
    with connection.cursor() as cursor:
        cursor.execute(
            _answer_statement(),
            [IdempotencyRecord.Status.DONE, status_code, body_field.get_db_prep_save(body, connection), record_pk],
        )
