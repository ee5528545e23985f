"""Times as the partner reads them and as operators type them (plumbing: imports no app).

- ``iso_utc``: every time in an API answer or a webhook payload, ISO 8601 in UTC with ``Z``.
- ``as_of_parse``: the ``--as-of`` time of the nightly commands and tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone


def iso_utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_of_parse(value: str | datetime | None) -> datetime:
    """An ISO 8601 time (``2026-11-23T02:00``, ``…Z``, ``…+01:00`` or a date) as an aware datetime.

    A time without an offset is on the wall clock of ``TIME_ZONE``; a date means its midnight there.
    ``None`` means now.
    """
    if value is None or value == "":
        return timezone.now()
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment
