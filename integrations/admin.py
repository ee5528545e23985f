"""The back-office for the Zoho integration: catalogue sync runs and cached Zoho contacts (read-only)."""

from __future__ import annotations

from django.contrib import admin

from integrations.models import CatalogueSync, ZohoContact
from orders.admin import ReadOnlyAdminMixin
from t2mobile_portal.admin_pii import PiiGuardedAdmin


@admin.register(CatalogueSync)
class CatalogueSyncAdmin(ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = (
        "started_at",
        "finished_at",
        "status",
        "items_seen",
        "created",
        "updated",
        "unpublished",
        "error_excerpt",
    )
    list_filter = ("status", "started_at")
    fields = ("started_at", "finished_at", "status", "items_seen", "created", "updated", "unpublished", "error")
    readonly_fields = fields

    @admin.display(description="error")
    def error_excerpt(self, run):
        return run.error[:120]


@admin.register(ZohoContact)
class ZohoContactAdmin(ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = ("customer_id", "contact_id", "partner", "created_at")
    list_filter = ("partner",)
    search_fields = ("=customer_id", "=contact_id")
    fields = ("partner", "customer_id", "contact_id", "created_at")
    readonly_fields = fields
