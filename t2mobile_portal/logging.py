"""Log context: the request, order and task ids that every JSON log line carries.

Context lives in ``contextvars`` so that it follows a request through gunicorn threads and a task
through a Celery worker. ``mask_email`` and ``mask_phone`` are the only forms in which customer
contact data may reach a log line.
"""

from __future__ import annotations

import contextvars
import logging

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
