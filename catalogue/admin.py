"""The back-office for the catalogue: which Zoho items are published and at what price per tenure,
"Sync from Zoho now", and the sync runs (read-only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse

from catalogue.models import CatalogueSync, Product, ProductPlan
from catalogue.services import catalogue_sync_request, product_plan_save_by_staff, product_save_by_staff
from core.admin_actions import confirmation_page, confirmed_form
from core.admin_display import ReadOnlyAdminMixin
from core.admin_pii import PiiGuardedAdmin


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


class ProductPlanInline(admin.TabularInline):
    model = ProductPlan
    extra = 0
    can_delete = False  # untick "is active" instead, so that a sync does not bring the tenure back
    fields = ("tenure", "price", "is_active", "set_by_staff", "updated_at")
    readonly_fields = ("set_by_staff", "updated_at")


@admin.register(Product)
class ProductAdmin(PiiGuardedAdmin, admin.ModelAdmin):
    list_display = (
        "name",
        "item_id",
        "sku",
        "zoho_status",
        "is_published",
        "plans_summary",
        "published_set_by_staff",
        "last_synced_at",
    )
    list_editable = ("is_published",)
    list_filter = ("is_published", "zoho_status", "published_set_by_staff")
    search_fields = ("name", "=item_id", "sku")
    fields = (
        "item_id",
        "name",
        "sku",
        "description",
        "rate",
        "unit",
        "zoho_status",
        "is_published",
        "published_set_by_staff",
        "provisioner",
        "last_synced_at",
    )
    readonly_fields = (
        "item_id",
        "name",
        "sku",
        "description",
        "rate",
        "unit",
        "zoho_status",
        "published_set_by_staff",
        "provisioner",
        "last_synced_at",
    )
    inlines = (ProductPlanInline,)
    change_list_template = "admin/catalogue/product/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("plans")

    def has_add_permission(self, request):
        return False  # products come from Zoho; "Sync from Zoho now" brings new ones

    def has_delete_permission(self, request, obj=None):
        return False  # old orders point to products; unpublish instead

    @admin.display(description="plans (tenure: price)")
    def plans_summary(self, product):
        plans = sorted(product.plans.all(), key=lambda plan: plan.price)
        return ", ".join(f"{plan.tenure}: {plan.price}" + ("" if plan.is_active else " (off)") for plan in plans) or "-"

    def save_model(self, request, obj, form, change):
        product_save_by_staff(product=obj, changed_fields=form.changed_data)

    def save_formset(self, request, form, formset, change):
        for plan in formset.save(commit=False):
            product_plan_save_by_staff(plan=plan)

    # --- "Sync from Zoho now" ---------------------------------------------------------------------

    def has_sync_permission(self, request) -> bool:
        return request.user.has_perm("catalogue.sync_catalogue")

    def get_urls(self):
        return [
            path("sync/", self.admin_site.admin_view(self.sync_view), name="catalogue_product_sync"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_sync": self.has_sync_permission(request)}
        return super().changelist_view(request, extra_context=extra_context)

    def sync_view(self, request):
        if not self.has_sync_permission(request):
            raise PermissionDenied
        confirmed, form = confirmed_form(request, None)
        if not confirmed or request.method != "POST":
            return confirmation_page(
                self,
                request,
                [],
                title="Sync the catalogue from Zoho",
                question="Read every Zoho item now and update the local catalogue? Prices and published "
                "flags set by staff are kept.",
                confirm_label="Yes, sync now",
            )
        catalogue_sync_request()
        LogEntry.objects.create(
            user_id=request.user.pk,
            content_type=ContentType.objects.get_for_model(Product),
            object_repr="catalogue",
            action_flag=CHANGE,
            change_message="Queued a catalogue sync from Zoho",
        )
        self.message_user(request, "Catalogue sync queued; refresh in a minute to see the result.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:catalogue_product_changelist"))
