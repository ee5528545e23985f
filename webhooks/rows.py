"""One UPDATE for the events of a recorded batch, each with its own new fields (``outcomes.py``)."""

from __future__ import annotations

from django.db import connection

from webhooks.models import WebhookLog


def events_update(rows: dict[int, dict]) -> None:
    """One UPDATE that gives each event its own new fields: a field with the same value on every row
    is set once, the others by ``CASE`` on the primary key. Raw SQL because the ORM's ``bulk_update``
    builds this same statement at about twenty times the CPU, which was most of a delivery's cost;
    plain SQL that PostgreSQL and SQLite both run, with the values prepared by the model's fields."""
    if not rows:
        return
    meta, quote = WebhookLog._meta, connection.ops.quote_name
    pk_column = quote(meta.pk.column)
    assignments, params = [], []
    for name in next(iter(rows.values())):
        field = meta.get_field(name)
        values = [row[name] for row in rows.values()]
        if all(value == values[0] for value in values):
            assignments.append(f"{quote(field.column)} = %s")
            params.append(field.get_db_prep_save(values[0], connection))
            continue
        whens = " ".join(["WHEN %s THEN %s"] * len(rows))
        assignments.append(f"{quote(field.column)} = CASE {pk_column} {whens} END")
        for pk, value in zip(rows, values, strict=True):
            params += [pk, field.get_db_prep_save(value, connection)]
    placeholders = ", ".join(["%s"] * len(rows))
    # Names come from the model, every value is a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {pk_column} IN ({placeholders})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *rows])
