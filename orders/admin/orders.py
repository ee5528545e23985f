"""The back-office for orders (with their fulfilment, subscription and webhook events).

An order's page answers "where is order X and why": its status and failure reason, the fulfilment
(attempts, last error, next attempt), and every webhook event with its attempts. History is
read-only; every change is an action that calls a service (``orders/transitions.py``,
``webhooks/controls.py``) after a confirmation page, and leaves a LogEntry.

Customer email and phone are masked for staff without ``orders.view_customer_pii``. The custom
permissions and the Support and Ops groups are made by ``t2mobile_portal/staff_groups.py``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from catalogue.models import Product
from core.admin_actions import (
    ObjectActionsMixin,
    confirm_then_act,
)
from core.admin_display import ReadOnlyAdminMixin, admin_link, pretty_json
from core.admin_pii import PiiGuardedAdmin, can_see_pii
from core.logging import mask_email, mask_phone
from orders.models import Fulfilment, IdempotencyRecord, Order
from orders.selectors import orders_needing_attention
from orders.transitions import OrderStateError, order_hold, order_mark_failed, order_redrive, order_release
from webhooks.admin import ResendPermissionMixin
from webhooks.controls import event_resend
from webhooks.models import WebhookLog

# --- Orders ---------------------------------------------------------------------------------------


class AttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("stuck", "Stuck: PROCESSING over 15 min, or a FAILED webhook")]

    def queryset(self, request, queryset):
        if self.value() == "stuck":
            return queryset.filter(pk__in=orders_needing_attention().values("pk"))
        return queryset


class ProductFilter(admin.SimpleListFilter):
    title = "product"
    parameter_name = "product"

    def lookups(self, request, model_admin):
        return list(Product.objects.order_by("name").values_list("item_id", "name"))

    def queryset(self, request, queryset):
        return queryset.filter(product_id=self.value()) if self.value() else queryset


class FulfilmentInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = Fulfilment
    can_delete = False
    verbose_name = "fulfilment"
    verbose_name_plural = "fulfilment (the Zoho side of the order)"
    fields = (
        ("status", "attempts"),
        ("activation_reference", "sales_order_id"),
        ("sales_order_name", "sales_order_numbering"),
        ("starts_at", "expires_at"),
        ("last_attempt_at", "next_attempt_at"),
        "last_error",
        "updated_at",
    )
    readonly_fields = tuple(name for row in fields for name in (row if isinstance(row, tuple) else (row,)))


class WebhookLogInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WebhookLog
    extra = 0
    can_delete = False
    ordering = ("created_at", "pk")
    fields = ("event", "event_type", "status", "retries", "next_retry_at", "created_at", "sent_at", "attempts_table")
    readonly_fields = fields
    verbose_name = "webhook event"
    verbose_name_plural = "webhook events (with their delivery attempts)"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("attempts")

    @admin.display(description="event")
    def event(self, log):
        return admin_link(log, log.event_id)

    @admin.display(description="attempts")
    def attempts_table(self, log):
        attempts = list(log.attempts.all())
        if not attempts:
            return "none yet"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td></tr>",
            (
                (
                    timezone.localtime(a.attempted_at).strftime("%Y-%m-%d %H:%M:%S %Z"),
                    a.status_code or "-",
                    a.duration_ms,
                    a.error or a.response_excerpt[:120],
                )
                for a in attempts
            ),
        )
        return format_html(
            "<table><tr><th>when</th><th>HTTP</th><th>took</th><th>error / response</th></tr>{}</table>", rows
        )


class MarkFailedForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Sent to the partner as failureReason in ORDER_FAILED: keep it partner-safe.",
    )


@admin.register(Order)
class OrderAdmin(ResendPermissionMixin, ObjectActionsMixin, ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_filter = (
        AttentionFilter,
        "status",
        "type",
        ProductFilter,
        "tenure",
        "partner",
        "created_at",
        "updated_at",
    )
    search_fields = (
        "=order_id",
        "=customer_id",
        "=customer_email",
        "=customer_phone",
        "=zoho_sales_order_id",
        "=activation_reference",
        "=fulfilment__sales_order_id",
        "=fulfilment__activation_reference",
    )
    search_help_text = "Exact orderId, customerId, email, phone, Zoho sales order id or activation reference."
    list_select_related = ("partner",)
    list_per_page = 50
    ordering = ("-pk",)  # newest first, by the primary key index (created_at has none)
    show_full_result_count = False
    inlines = (FulfilmentInline, WebhookLogInline)
    actions = ("redrive_orders", "hold_orders", "release_orders", "mark_orders_failed", "resend_failed_events")
    object_actions = actions
    object_action_labels = {
        "redrive_orders": "Re-drive provisioning",
        "hold_orders": "Put on hold",
        "release_orders": "Release",
        "mark_orders_failed": "Mark FAILED",
        "resend_failed_events": "Resend FAILED webhooks",
    }

    # The states in which each button changes something (the services refuse or skip the others).
    ACTION_STATUSES = {
        "redrive_orders": (Order.Status.FAILED, Order.Status.PROCESSING),
        "hold_orders": (Order.Status.PROCESSING,),
        "release_orders": (Order.Status.PENDING,),
        "mark_orders_failed": (Order.Status.PROCESSING, Order.Status.PENDING),
    }

    def object_action_applies(self, obj, name):
        if name == "resend_failed_events":
            return WebhookLog.objects.filter(order=obj, status=WebhookLog.Status.FAILED).exists()
        return obj.status in self.ACTION_STATUSES.get(name, Order.Status.values)

    # --- What staff see ---------------------------------------------------------------------------

    def get_queryset(self, request):
        product_name = Product.objects.filter(item_id=OuterRef("product_id")).values("name")[:1]
        return super().get_queryset(request).annotate(product_name=Subquery(product_name))

    def get_list_display(self, request):
        customer = "customer_full" if can_see_pii(request) else "customer_masked"
        return ("order_id", "status", "type", "product", "tenure", customer, "created_at", "updated_at")

    def get_fieldsets(self, request, obj=None):
        email, phone = (
            ("customer_email", "customer_phone")
            if can_see_pii(request)
            else ("masked_customer_email", "masked_customer_phone")
        )
        return (
            (None, {"fields": ("where_and_why",)}),
            (
                "Order",
                {
                    "fields": (
                        ("order_id", "partner"),
                        ("status", "failure_reason"),
                        ("type", "renewal_of", "subscription"),
                        ("product", "tenure"),
                        ("quantity", "unit_price", "currency"),
                        "metadata_json",
                        ("created_at", "updated_at"),
                    )
                },
            ),
            ("Customer", {"fields": (("customer_id", "customer_name"), (email, phone))}),
            ("Zoho", {"fields": (("zoho_sales_order_id", "activation_reference"), "idempotency")}),
        )

    def get_readonly_fields(self, request, obj=None):
        return [
            name
            for fieldset in self.get_fieldsets(request, obj)
            for entry in fieldset[1]["fields"]
            for name in (entry if isinstance(entry, tuple) else (entry,))
        ]

    @admin.display(description="product", ordering="product_name")
    def product(self, order):
        name = getattr(order, "product_name", None)
        return f"{name} ({order.product_id})" if name else order.product_id

    @admin.display(description="customer")
    def customer_masked(self, order):
        return f"{order.customer_id} · {mask_email(order.customer_email)} · {mask_phone(order.customer_phone)}"

    @admin.display(description="customer")
    def customer_full(self, order):
        return f"{order.customer_id} · {order.customer_email} · {order.customer_phone}"

    @admin.display(description="customer email")
    def masked_customer_email(self, order):
        return mask_email(order.customer_email)

    @admin.display(description="customer phone")
    def masked_customer_phone(self, order):
        return mask_phone(order.customer_phone)

    @admin.display(description="metadata")
    def metadata_json(self, order):
        return pretty_json(order.metadata)

    @admin.display(description="idempotency record")
    def idempotency(self, order):
        record = IdempotencyRecord.objects.filter(partner_id=order.partner_id, key=order.idempotency_key).first()
        return admin_link(record, order.idempotency_key) if record else f"{order.idempotency_key} (expired)"

    @admin.display(description="where it is and why")
    def where_and_why(self, order):
        lines = [f"Order is {order.status}."]
        if order.failure_reason:
            lines.append(f"Failure reason sent to the partner: {order.failure_reason}")
        fulfilment = Fulfilment.objects.filter(order=order).first()
        if fulfilment is not None:
            lines.append(f"Fulfilment {fulfilment.status} after {fulfilment.attempts} Zoho attempt(s).")
            if fulfilment.last_error:
                lines.append(f"Last error: {fulfilment.last_error[:300]}")
            if order.status == Order.Status.PROCESSING and fulfilment.next_attempt_at:
                lines.append(f"Next attempt at {timezone.localtime(fulfilment.next_attempt_at):%Y-%m-%d %H:%M:%S %Z}.")
        events = dict(
            WebhookLog.objects.filter(order=order)
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        if events:
            lines.append("Webhook events: " + ", ".join(f"{n} {status}" for status, n in sorted(events.items())) + ".")
        if order.status == Order.Status.PENDING:
            lines.append("On hold: nothing happens until it is released or re-driven.")
        return format_html_join("", "<div>{}</div>", ((line,) for line in lines))

    # --- Actions: each calls a service ------------------------------------------------------------

    def has_redrive_permission(self, request):
        return request.user.has_perm("orders.redrive_order")

    def has_hold_permission(self, request):
        return request.user.has_perm("orders.hold_order")

    def has_fail_permission(self, request):
        return request.user.has_perm("orders.fail_order")

    @admin.action(permissions=["redrive"], description="Re-drive provisioning (FAILED or stuck → PROCESSING)")
    def redrive_orders(self, request, queryset):
        def act(order, data):
            order_redrive(order=order)
            return f"Re-drove provisioning (was {order.status})"

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Re-drive provisioning",
            question="Queue provisioning again now for these orders? They become PROCESSING.",
            confirm_label="Yes, re-drive",
            act=act,
            done="Re-driven",
            refused=(OrderStateError,),
        )

    @admin.action(permissions=["hold"], description="Put on hold (PENDING)")
    def hold_orders(self, request, queryset):
        def act(order, data):
            if order.status == Order.Status.PENDING:
                return None
            order_hold(order=order)
            return "Put on hold"

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Put orders on hold",
            question="Stop provisioning these orders until they are released?",
            confirm_label="Yes, put on hold",
            act=act,
            done="Put on hold",
            refused=(OrderStateError,),
        )

    @admin.action(permissions=["hold"], description="Release from hold")
    def release_orders(self, request, queryset):
        def act(order, data):
            if order.status != Order.Status.PENDING:
                return None
            order_release(order=order)
            return "Released from hold"

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Release orders",
            question="Release these orders from hold? Provisioning is queued again.",
            confirm_label="Yes, release",
            act=act,
            done="Released",
            refused=(OrderStateError,),
        )

    @admin.action(permissions=["fail"], description="Mark FAILED with a reason (sends ORDER_FAILED)")
    def mark_orders_failed(self, request, queryset):
        def act(order, data):
            if order.status not in (Order.Status.PROCESSING, Order.Status.PENDING):
                return None  # the service leaves FAILED and FULFILLED orders as they are
            order_mark_failed(order=order, reason=data["reason"])
            return f"Marked FAILED: {data['reason']}"

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Mark orders FAILED",
            question="Mark these orders FAILED? The partner receives ORDER_FAILED with the reason below.",
            confirm_label="Yes, mark FAILED",
            act=act,
            done="Marked FAILED",
            form_class=MarkFailedForm,
        )

    @admin.action(permissions=["resend"], description="Resend the FAILED webhook events of the selected orders")
    def resend_failed_events(self, request, queryset):
        def act(order, data):
            failed = list(WebhookLog.objects.filter(order=order, status=WebhookLog.Status.FAILED).order_by("pk"))
            for log in failed:
                event_resend(log=log)
            return f"Resent {len(failed)} FAILED webhook event(s)" if failed else None

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Resend FAILED webhook events",
            question="Send the FAILED webhook events of these orders again (same event ids)?",
            confirm_label="Yes, resend",
            act=act,
            done="Orders with events resent",
        )
