"""The back-office for orders, partners and API keys, and the catalogue.

An order's page answers "where is order X and why": its status and failure reason, the fulfilment
(attempts, last error, next attempt), and every webhook event with its attempts. History is
read-only; every change is an action that calls a service (``orders/provisioning.py``,
``webhooks/services.py``, ``orders/services.py``) after a confirmation page, and leaves a LogEntry.

Customer email and phone are masked for staff without ``orders.view_customer_pii``. The custom
permissions and the Support and Ops groups are made by ``t2mobile_portal/staff_groups.py``.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from orders.models import ApiKey, Fulfilment, IdempotencyRecord, Order, Partner, Product, ProductPlan
from orders.provisioning import OrderStateError, order_hold, order_mark_failed, order_redrive, order_release
from orders.selectors import orders_needing_attention
from orders.services import (
    api_key_create,
    api_key_revoke,
    catalogue_sync_request,
    product_plan_save_by_staff,
    product_save_by_staff,
)
from t2mobile_portal.admin_actions import (
    ObjectActionsMixin,
    confirm_then_act,
    confirmation_page,
    confirmed_form,
    show_once,
)
from t2mobile_portal.admin_pii import PiiGuardedAdmin, can_see_pii
from t2mobile_portal.logging import mask_email, mask_phone
from webhooks.client import UrlRefused, webhook_url_validate
from webhooks.models import WebhookLog, WebhookSecret
from webhooks.services import (
    event_resend,
    events_resend_failed,
    partner_deliveries_pause,
    partner_deliveries_resume,
    webhook_secret_rotate,
)


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
    fields = (
        ("status", "attempts"),
        ("activation_reference", "sales_order_id"),
        ("starts_at", "expires_at"),
        ("last_attempt_at", "next_attempt_at"),
        "last_error",
        "updated_at",
    )
    readonly_fields = (
        "status",
        "attempts",
        "activation_reference",
        "sales_order_id",
        "starts_at",
        "expires_at",
        "last_attempt_at",
        "next_attempt_at",
        "last_error",
        "updated_at",
    )


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
                    timezone.localtime(a.attempted_at).strftime("%Y-%m-%d %H:%M:%S"),
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
class OrderAdmin(ObjectActionsMixin, ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
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
                        ("type", "renewal_of"),
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
                lines.append(f"Next attempt at {timezone.localtime(fulfilment.next_attempt_at):%Y-%m-%d %H:%M:%S}.")
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

    def has_resend_permission(self, request):
        return request.user.has_perm("webhooks.resend_webhook")

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


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = ("key", "partner", "status", "response_status", "created_at", "expires_at")
    list_filter = ("status", "response_status", "partner")
    search_fields = ("=key",)
    fields = ("partner", "key", "fingerprint", "status", "response_status", "response_json", "created_at", "expires_at")
    readonly_fields = fields

    @admin.display(description="response body")
    def response_json(self, record):
        return pretty_json(record.response_body)


# --- Partners and API keys ------------------------------------------------------------------------


class ApiKeyInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("key", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    ordering = ("-created_at",)

    @admin.display(description="key")
    def key(self, api_key):
        return admin_link(api_key, f"{api_key.prefix}…")


class WebhookSecretInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Only for staff who may see secrets (``webhooks.view_webhooksecret``); even they see a prefix."""

    model = WebhookSecret
    extra = 0
    fields = ("secret_prefix", "created_at", "expires_at")
    readonly_fields = fields
    verbose_name_plural = "webhook signing secrets (new ones are shown once, at rotation)"

    @admin.display(description="secret")
    def secret_prefix(self, secret):
        return f"{secret.secret[:10]}…"


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="A label to tell keys apart.")


class SecretRotateForm(forms.Form):
    grace_hours = forms.IntegerField(
        min_value=0,
        max_value=24 * 30,
        initial=24,
        help_text="How long the current secrets keep signing beside the new one.",
    )


class ResendSinceForm(forms.Form):
    since = forms.DateTimeField(
        help_text="Resend FAILED events created at or after this time (YYYY-MM-DD HH:MM).",
        initial=lambda: timezone.localtime().replace(microsecond=0) - timedelta(days=3),
    )


class PartnerForm(forms.ModelForm):
    class Meta:
        model = Partner
        fields = ("partner_id", "name", "webhook_url", "webhook_scheme", "rate_limit")

    def clean_webhook_url(self):
        url = self.cleaned_data["webhook_url"]
        if url:
            try:
                webhook_url_validate(url)  # a plain URL; https and public targets only in production
            except UrlRefused as exc:
                raise forms.ValidationError(str(exc)) from None
        return url


@admin.register(Partner)
class PartnerAdmin(ObjectActionsMixin, PiiGuardedAdmin, admin.ModelAdmin):
    form = PartnerForm
    list_display = (
        "partner_id",
        "name",
        "webhook_url",
        "webhook_scheme",
        "deliveries_paused",
        "active_keys",
        "keys_last_used_at",
    )
    search_fields = ("partner_id", "name")
    fields = (
        "partner_id",
        "name",
        "webhook_url",
        "webhook_scheme",
        "rate_limit",
        "deliveries_paused",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("deliveries_paused", "created_at", "updated_at")
    inlines = (ApiKeyInline, WebhookSecretInline)
    actions = (
        "create_api_key",
        "rotate_webhook_secret",
        "pause_deliveries",
        "resume_deliveries",
        "resend_failed_since",
    )
    object_actions = actions
    object_action_labels = {
        "create_api_key": "Create an API key",
        "rotate_webhook_secret": "Rotate webhook secret",
        "pause_deliveries": "Pause deliveries",
        "resume_deliveries": "Resume deliveries",
        "resend_failed_since": "Resend FAILED webhooks",
    }

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_key_count=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True)),
                keys_last_used=Max("api_keys__last_used_at"),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "partner_id") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # orders point to partners; a partner is never removed

    @admin.display(description="active API keys", ordering="active_key_count")
    def active_keys(self, partner):
        return partner.active_key_count

    @admin.display(description="API key last used", ordering="keys_last_used")
    def keys_last_used_at(self, partner):
        return partner.keys_last_used

    def has_create_key_permission(self, request):
        return request.user.has_perm("orders.add_apikey")

    def has_rotate_secret_permission(self, request):
        return request.user.has_perm("webhooks.add_webhooksecret")

    def has_pause_permission(self, request):
        return request.user.has_perm("orders.pause_deliveries")

    def has_resend_permission(self, request):
        return request.user.has_perm("webhooks.resend_webhook")

    def _one_partner(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one partner.", messages.WARNING)
            return None
        return queryset.get()

    def _change_url(self, partner) -> str:
        return reverse("admin:orders_partner_change", args=[partner.pk])

    @admin.action(permissions=["create_key"], description="Create an API key (shown once)")
    def create_api_key(self, request, queryset):
        partner = self._one_partner(request, queryset)
        if partner is None:
            return None
        confirmed, form = confirmed_form(request, ApiKeyCreateForm)
        if not confirmed:
            return confirmation_page(
                self,
                request,
                queryset,
                title="Create an API key",
                question=f"Create a new API key for {partner}? The plain key is shown once, on the next page.",
                confirm_label="Yes, create the key",
                form=form,
            )
        api_key, plain = api_key_create(partner=partner, name=form.cleaned_data["name"])
        self.log_change(request, partner, f"Created API key {api_key.prefix}…")
        return show_once(
            self,
            request,
            title="New API key",
            secret_label="API key",
            secret=plain,
            note="Copy this key now and hand it over securely: it is not stored and is never shown again.",
            back_url=self._change_url(partner),
        )

    @admin.action(permissions=["rotate_secret"], description="Rotate the webhook signing secret (shown once)")
    def rotate_webhook_secret(self, request, queryset):
        partner = self._one_partner(request, queryset)
        if partner is None:
            return None
        confirmed, form = confirmed_form(request, SecretRotateForm)
        if not confirmed:
            return confirmation_page(
                self,
                request,
                queryset,
                title="Rotate the webhook signing secret",
                question=(
                    f"Add a new signing secret for {partner}? Both sign during the grace period; "
                    "the new secret is shown once, on the next page."
                ),
                confirm_label="Yes, rotate",
                form=form,
            )
        hours = form.cleaned_data["grace_hours"]
        secret = webhook_secret_rotate(partner=partner, grace=timedelta(hours=hours))
        self.log_change(request, partner, f"Rotated the webhook secret ({hours} h grace)")
        return show_once(
            self,
            request,
            title="New webhook signing secret",
            secret_label="Signing secret",
            secret=secret,
            note=f"Give this secret to the partner now; it is not shown again. The old one signs for {hours} h more.",
            back_url=self._change_url(partner),
        )

    @admin.action(permissions=["pause"], description="Pause webhook deliveries")
    def pause_deliveries(self, request, queryset):
        def act(partner, data):
            partner_deliveries_pause(partner=partner)
            return "Paused webhook deliveries"

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Pause webhook deliveries",
            question="Hold every webhook delivery to these partners? Events wait and go out, in order, on resume.",
            confirm_label="Yes, pause",
            act=act,
            done="Paused",
        )

    @admin.action(permissions=["pause"], description="Resume webhook deliveries")
    def resume_deliveries(self, request, queryset):
        def act(partner, data):
            partner_deliveries_resume(partner=partner)
            return "Resumed webhook deliveries"

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Resume webhook deliveries",
            question="Send these partners' waiting webhook events again, in order?",
            confirm_label="Yes, resume",
            act=act,
            done="Resumed",
        )

    @admin.action(permissions=["resend"], description="Resend all FAILED webhook events since a time")
    def resend_failed_since(self, request, queryset):
        def act(partner, data):
            count = events_resend_failed(since=data["since"], partner=partner)
            return f"Resent {count} FAILED webhook event(s) since {data['since']:%Y-%m-%d %H:%M}" if count else None

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Resend FAILED webhook events",
            question="Send these partners' FAILED webhook events again (same event ids)?",
            confirm_label="Yes, resend",
            act=act,
            done="Partners with events resent",
            form_class=ResendSinceForm,
        )


@admin.register(ApiKey)
class ApiKeyAdmin(ObjectActionsMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = ("prefix", "name", "partner", "created_at", "last_used_at", "revoked_at")
    list_filter = ("partner", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name")
    fields = ("partner", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_keys",)
    object_actions = actions
    object_action_labels = {"revoke_keys": "Revoke this key"}

    def has_add_permission(self, request):
        return False  # keys are created by the partner's "Create an API key" action, which shows it once

    def has_change_permission(self, request, obj=None):
        return False  # a key is only ever revoked, by its action

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted: the history of who called with which key stays

    def has_revoke_permission(self, request):
        return request.user.has_perm("orders.change_apikey")

    @admin.action(permissions=["revoke"], description="Revoke the selected keys")
    def revoke_keys(self, request, queryset):
        def act(api_key, data):
            if api_key.revoked_at is not None:
                return None
            api_key_revoke(api_key=api_key)
            return "Revoked"

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Revoke API keys",
            question="Revoke these keys? Calls with them are refused from now on; this cannot be undone.",
            confirm_label="Yes, revoke",
            act=act,
            done="Revoked",
        )


# --- Catalogue ------------------------------------------------------------------------------------


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
    change_list_template = "admin/orders/product/change_list.html"

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
        return request.user.has_perm("orders.sync_catalogue")

    def get_urls(self):
        return [
            path("sync/", self.admin_site.admin_view(self.sync_view), name="orders_product_sync"),
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
        return HttpResponseRedirect(reverse("admin:orders_product_changelist"))
