"""The back-office for webhook events: what was sent, to whom, how each attempt went; resend. And the
partner page's deliveries part: the endpoint's health (healthy, failing since, disabled since and
why), pause, resume, enable the endpoint, resend.

Events and attempts are history and read-only. Resending calls ``webhooks.controls.event_resend``
(a new attempt under the same event id) after a confirmation page, and leaves a LogEntry. Customer
email and phone inside payloads are masked for staff without ``orders.view_customer_pii``; the
exact body sent is shown only to staff with it.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.utils import timezone

from core.admin_actions import ObjectActionsMixin, confirm_then_act
from core.admin_display import ReadOnlyAdminMixin, admin_link, pretty_json
from core.admin_pii import PiiGuardedAdmin, can_see_pii
from core.logging import mask_email, mask_phone
from partners import admin as partners_admin
from partners.models import Partner
from webhooks.client import UrlRefused, webhook_url_validate
from webhooks.controls import (
    endpoint_enable,
    event_resend,
    events_resend_failed,
    partner_deliveries_pause,
    partner_deliveries_resume,
)
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog

PII_KEYS = {"customerEmail": mask_email, "customerPhone": mask_phone}


class ResendPermissionMixin:
    """``resend`` actions (events, an order's events, a partner's FAILED events) need this one permission."""

    def has_resend_permission(self, request):
        return request.user.has_perm("webhooks.resend_webhook")


def payload_masked(value):
    """The payload with customer email and phone masked, wherever they appear in it."""
    if isinstance(value, dict):
        return {
            key: PII_KEYS[key](item) if key in PII_KEYS and isinstance(item, str) else payload_masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [payload_masked(item) for item in value]
    return value


class WebhookAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "duration_ms", "status_code", "error", "response_excerpt")
    readonly_fields = fields


@admin.register(WebhookLog)
class WebhookLogAdmin(ResendPermissionMixin, ObjectActionsMixin, ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = (
        "event_id",
        "event_type",
        "partner",
        "order_link",
        "status",
        "retries",
        "next_retry_at",
        "last_status_code",
        "created_at",
        "sent_at",
    )
    list_filter = ("status", "event_type", "partner", "created_at")
    search_fields = ("=event_id", "=order__order_id", "=dedup_key")
    search_help_text = "Exact event id, orderId or dedup key."
    list_select_related = ("partner", "order")
    ordering = ("-pk",)  # newest first, by the primary key index
    show_full_result_count = False
    inlines = (WebhookAttemptInline,)
    actions = ("resend_events",)
    object_actions = actions
    object_action_labels = {"resend_events": "Resend this event"}

    def get_fields(self, request, obj=None):
        fields = [
            "event_id",
            "event_type",
            "partner",
            "order_link",
            "status",
            "retries",
            "next_retry_at",
            "created_at",
            "sent_at",
            "dedup_key",
            "response_json",
        ]
        if can_see_pii(request):
            return [*fields, "payload_json", "body"]
        return [*fields, "payload_masked_json"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="order", ordering="order__order_id")
    def order_link(self, log):
        return admin_link(log.order, log.order.order_id) if log.order_id else "-"

    @admin.display(description="last HTTP")
    def last_status_code(self, log):
        response = log.response or {}
        return response.get("statusCode") or (response.get("error") or "-")[:60]

    @admin.display(description="last response")
    def response_json(self, log):
        return pretty_json(log.response)

    @admin.display(description="payload")
    def payload_json(self, log):
        return pretty_json(log.payload)

    @admin.display(description="payload (customer contact masked)")
    def payload_masked_json(self, log):
        return pretty_json(payload_masked(log.payload))

    @admin.action(permissions=["resend"], description="Resend the selected events (same event id)")
    def resend_events(self, request, queryset):
        def act(log, data):
            event_resend(log=log)
            return "Resent"

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Resend webhook events",
            question="Send these events to the partner again, under the same event ids, with a fresh retry schedule?",
            confirm_label="Yes, resend",
            act=act,
            done="Resent",
        )


# --- The partner page: webhook settings and deliveries ---------------------------------------------


class ResendSinceForm(forms.Form):
    since = forms.DateTimeField(
        help_text="Resend FAILED events created at or after this time (YYYY-MM-DD HH:MM).",
        initial=lambda: timezone.localtime().replace(microsecond=0) - timedelta(days=3),
    )


class PartnerWebhookForm(forms.ModelForm):
    """The partner form, with the webhook URL checked as deliveries will check it."""

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


def _after_deliveries(names: tuple[str, ...], name: str) -> tuple[str, ...]:
    at = names.index("deliveries") + 1
    return (*names[:at], name, *names[at:])


def endpoint_health_text(state: WebhookEndpointState | None) -> str:
    """healthy / failing since … / DISABLED since … because …, for staff."""
    if state is None:
        return "healthy"
    if state.is_disabled:
        return f"DISABLED since {_when(state.disabled_at)} because {state.get_disabled_reason_display()}"
    if state.failing_since is not None:
        return f"failing since {_when(state.failing_since)} ({state.consecutive_failures} failures in a row)"
    if state.is_failing:
        return f"failing ({state.consecutive_failures} failures in a row)"
    return "healthy"


def _when(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"


class PartnerAdmin(ResendPermissionMixin, partners_admin.PartnerAdmin):
    """``partners.admin.PartnerAdmin`` with what webhooks adds: the webhook URL checked as deliveries
    will check it, the endpoint's health, and pause, resume, enable the endpoint and resend.
    Registered in place of it (``partners`` comes before ``webhooks`` in INSTALLED_APPS, so its
    admin module is loaded first)."""

    form = PartnerWebhookForm
    list_display = _after_deliveries(partners_admin.PartnerAdmin.list_display, "endpoint_health")
    fields = _after_deliveries(partners_admin.PartnerAdmin.fields, "endpoint_health")
    readonly_fields = (*partners_admin.PartnerAdmin.readonly_fields, "endpoint_health")
    actions = (
        *partners_admin.PartnerAdmin.actions,
        "pause_deliveries",
        "resume_deliveries",
        "enable_endpoint",
        "resend_failed_since",
    )
    object_actions = actions
    object_action_labels = {
        **partners_admin.PartnerAdmin.object_action_labels,
        "pause_deliveries": "Pause deliveries",
        "resume_deliveries": "Resume deliveries",
        "enable_endpoint": "Enable endpoint",
        "resend_failed_since": "Resend FAILED webhooks",
    }

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("webhook_endpoint_state")

    def object_action_applies(self, partner, name):
        state = getattr(partner, "webhook_endpoint_state", None)
        return {
            "pause_deliveries": not partner.deliveries_paused,
            "resume_deliveries": partner.deliveries_paused,
            "enable_endpoint": state is not None and state.is_disabled,
            "resend_failed_since": WebhookLog.objects.filter(partner=partner, status=WebhookLog.Status.FAILED).exists(),
        }.get(name, True)

    @admin.display(description="webhook endpoint")
    def endpoint_health(self, partner):
        return endpoint_health_text(getattr(partner, "webhook_endpoint_state", None))

    def has_pause_permission(self, request):
        return request.user.has_perm("partners.pause_deliveries")

    @admin.action(permissions=["pause"], description="Enable the webhook endpoint again")
    def enable_endpoint(self, request, queryset):
        def act(partner, data):
            return "Enabled the webhook endpoint" if endpoint_enable(partner=partner) else None

        return confirm_then_act(
            self,
            request,
            queryset,
            title="Enable the webhook endpoint",
            question=(
                "Enable these partners' disabled webhook endpoints? Their waiting events go out, in order. "
                "A 410 disables an endpoint again at once."
            ),
            confirm_label="Yes, enable",
            act=act,
            done="Enabled",
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


admin.site.unregister(Partner)
admin.site.register(Partner, PartnerAdmin)
