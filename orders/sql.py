"""The order flow's hand-written SQL: the statements of one intake, where building each with the
ORM cost about ten times the database's own work (issue 14: ~1 ms of Python per query against
~0.1 ms for the round trip). The rules they serve stay in Python with their callers:

- ``idempotency_record_find`` reads the stored answer of (partner, key) for
  ``orders.idempotency.idempotent_answer`` (replay, 422, or a new key);
- ``row_insert(order, skip_conflict=True)`` is the (partner, orderId) and (partner, key)
  uniqueness of ``orders.intake.order_accept``: the unique indexes decide, and a taken orderId or
  key is answered there; ``row_insert`` also writes the fulfilment and the idempotency record.

The statements are the common subset of PostgreSQL and SQLite (``make run``): ``INSERT … ON
CONFLICT DO NOTHING RETURNING``. Table and column names come from the models, values are prepared
and read back by the fields themselves, so there is one code path and no second list of columns
to keep in step.
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
    the same values to commit or roll back before it decides); without a conflict target, every
    unique index of the table decides and the planner has no index to choose."""
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


_RECORD_FIELDS = ("id", "fingerprint", "status", "response_status", "response_body", "expires_at")


@functools.cache
def _record_select() -> tuple[str, list]:
    quote = connection.ops.quote_name
    meta = IdempotencyRecord._meta
    fields = [meta.get_field(name) for name in _RECORD_FIELDS]
    columns = ", ".join(quote(field.column) for field in fields)
    partner, key = (quote(meta.get_field(name).column) for name in ("partner", "key"))
    sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {partner} = %s AND {key} = %s"  # noqa: S608
    converters = []
    for field in fields:
        column = field.get_col(meta.db_table)
        converters.append((connection.ops.get_db_converters(column) + field.get_db_converters(connection), column))
    return sql, converters


def idempotency_record_find(*, partner_pk: int, key: str) -> IdempotencyRecord | None:
    """The record of (partner, key), with the fields a replay reads, or None."""
    sql, converters = _record_select()
    with connection.cursor() as cursor:
        cursor.execute(sql, [partner_pk, key])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (convert, column) in zip(row, converters, strict=True):
        for converter in convert:
            value = converter(value, column, connection)
        values.append(value)
    return IdempotencyRecord.from_db(connection.alias, _RECORD_FIELDS, values)
