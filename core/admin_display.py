"""Small pieces every app's admin shows with (plumbing: imports no app): JSON pretty-printed, a link
to a row's admin page, and read-only history."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import format_html


def pretty_json(value) -> str:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


def admin_link(obj, text=None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


class ReadOnlyAdminMixin:
    """History: viewable, never added, changed or deleted through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def changelist_url(model_label: str, **params) -> str:
    """The admin changelist of ``model_label`` ("app.model"), filtered by ``params``."""
    url = reverse(f"admin:{model_label.replace('.', '_')}_changelist")
    return f"{url}?{urlencode(params)}" if params else url
