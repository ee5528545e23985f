"""The back-office's read-only records of the order flow: idempotency records (the answer stored per
partner and key, ``orders/idempotency.py``) and the Zoho contacts the provisioner remembers.

An idempotency record is derived from the partner's request, customer email and phone included:
staff without ``orders.view_customer_pii`` see its key, status and times, never its fingerprint nor
its stored answer, and can filter on neither (``core/admin_pii.py``).
"""

from __future__ import annotations

from django.contrib import admin

from core.admin_display import ReadOnlyAdminMixin, pretty_json
from core.admin_pii import PiiGuardedAdmin, can_see_pii
from orders.models import IdempotencyRecord, ZohoContact


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = ("key", "partner", "status", "response_status", "created_at", "expires_at")
    list_filter = ("status", "response_status", "partner")
    search_fields = ("=key",)
    fields = ("partner", "key", "fingerprint", "status", "response_status", "response_json", "created_at", "expires_at")
    readonly_fields = fields
    # Shown only to staff who may see customer data (see the module docstring).
    pii_derived_fields = ("fingerprint", "response_json")

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if can_see_pii(request):
            return fields
        return tuple(name for name in fields if name not in self.pii_derived_fields)

    @admin.display(description="response body")
    def response_json(self, record):
        return pretty_json(record.response_body)


@admin.register(ZohoContact)
class ZohoContactAdmin(ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = ("customer_id", "contact_id", "partner", "created_at")
    list_filter = ("partner",)
    search_fields = ("=customer_id", "=contact_id")
    fields = ("partner", "customer_id", "contact_id", "created_at")
    readonly_fields = fields
