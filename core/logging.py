"""Log context and formats: the request, order and task ids that every log line carries, the
production JSON line, and the short human line of ``make run``.

Context lives in ``contextvars`` so that it follows a request through gunicorn threads and a task
through a Celery worker. ``mask_email`` and ``mask_phone`` are the only forms in which customer
contact data may reach a log line. ``LOG_FORMAT`` (settings) picks the formatter: ``json``, one
object per line with an ISO 8601 UTC ``time`` (production), or ``human`` (``make run``).
"""

from __future__ import annotations

import contextvars
import logging
from datetime import UTC, datetime

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
order_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_id", default=None)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)


class ContextFilter(logging.Filter):
    """Adds request_id, order_id and task_id to every record (None where unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs 4xx/5xx after the middleware has returned: take the id off the request.
        from_request = getattr(getattr(record, "request", None), "request_id", None)
        record.request_id = getattr(record, "request_id", None) or request_id_var.get() or from_request
        record.order_id = getattr(record, "order_id", None) or order_id_var.get()
        record.task_id = getattr(record, "task_id", None) or task_id_var.get()
        return True


def mask_email(email: str) -> str:
    local, _, domain = (email or "").partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(phone: str) -> str:
    if not phone or len(phone) < 8:
        return "***"
    return f"{phone[:7]}****{phone[-3:]}"


class UtcJsonFormatter(JsonFormatter):
    """One JSON object per line whose ``time`` is ISO 8601 in UTC, e.g. ``2026-12-02T00:27:00.009Z``.

    (``logging``'s default ``asctime`` is local time without an offset, which cannot be compared
    across machines or time zones.)
    """

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        when = datetime.fromtimestamp(record.created, tz=UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# Attributes every record has, or that only Django's request logging attaches (objects, not values).
_NOT_EXTRA = frozenset(RESERVED_ATTRS) | {"taskName", "request", "server_time", "color_message"}
_CONTEXT = ("request_id", "order_id", "task_id")


class HumanFormatter(logging.Formatter):
    """``03:12:01 WAT INFO orders.provisioning order fulfilled order_id=T2M1 sales_order_id=42`` (the
    machine's time, with its zone).

    For reading ``make run`` in a terminal: the fields of the JSON line as ``key=value``, with the
    empty ones and nested dicts left out.
    """

    def __init__(self) -> None:
        super().__init__(fmt="%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%H:%M:%S %Z")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        head, newline, rest = line.partition("\n")  # a traceback stays below the first line
        pairs = [(key, getattr(record, key, None)) for key in _CONTEXT]
        # Dicts (Celery's "data", a copy of what its message already says) stay in the JSON line only.
        pairs += [
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _NOT_EXTRA and key not in _CONTEXT and not isinstance(value, dict)
        ]
        fields = " ".join(f"{key}={_plain(value)}" for key, value in pairs if value not in (None, ""))
        return f"{head} {fields}{newline}{rest}" if fields else line


def _plain(value: object) -> str:
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text
