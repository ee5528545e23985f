"""The back-office for webhook events: what was sent, to whom, how each attempt went; resend.

Events and attempts are history and read-only. Resending calls ``webhooks.services.event_resend``
(a new attempt under the same event id) after a confirmation page, and leaves a LogEntry. Customer
email and phone inside payloads are masked for staff without ``orders.view_customer_pii``; the
exact body sent is shown only to staff with it.
"""

from __future__ import annotations

from django.contrib import admin

from orders.admin import ReadOnlyAdminMixin, admin_link, can_see_pii, pretty_json
from t2mobile_portal.admin_actions import ObjectActionsMixin, confirm_then_act
from t2mobile_portal.admin_pii import PiiGuardedAdmin
from t2mobile_portal.logging import mask_email, mask_phone
from webhooks.models import WebhookAttempt, WebhookLog, WebhookSecret
from webhooks.services import event_resend

PII_KEYS = {"customerEmail": mask_email, "customerPhone": mask_phone}


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
class WebhookLogAdmin(ObjectActionsMixin, ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
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

    def has_resend_permission(self, request):
        return request.user.has_perm("webhooks.resend_webhook")

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


@admin.register(WebhookSecret)
class WebhookSecretAdmin(ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    """Visible only with ``webhooks.view_webhooksecret`` (not Support, not Ops); prefixes only.
    New secrets are made by the partner's "Rotate the webhook signing secret" action."""

    list_display = ("secret_prefix", "partner", "created_at", "expires_at")
    list_filter = ("partner",)
    fields = ("partner", "secret_prefix", "created_at", "expires_at")
    readonly_fields = fields

    @admin.display(description="secret")
    def secret_prefix(self, secret):
        return f"{secret.secret[:10]}…"
