"""The back-office for partners: the partner (its ``partner_id`` and Zoho ``prefix`` set once, at
creation; its rate limit checked by the throttle's parser), its API keys (created shown once,
revoked, last use) and its webhook signing secrets (rotated, shown once; prefixes only, and only to
staff who may see secrets). ``docs/admin.md`` walks through onboarding a partner.

``webhooks/admin.py`` extends the partner page with the webhook settings and the delivery actions
(pause, resume, resend), which belong to the webhooks room.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Max, Q
from django.urls import reverse

from core.admin_actions import (
    ObjectActionsMixin,
    confirm_then_act,
    confirmation_page,
    confirmed_form,
    show_once,
)
from core.admin_display import ReadOnlyAdminMixin, admin_link
from core.admin_pii import PiiGuardedAdmin
from partners.models import ApiKey, Partner, WebhookSecret
from partners.services import api_key_create, api_key_revoke, webhook_secret_rotate


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
    """Only for staff who may see secrets (``partners.view_webhooksecret``); even they see a prefix."""

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


@admin.register(Partner)
class PartnerAdmin(ObjectActionsMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = (
        "partner_id",
        "prefix",
        "name",
        "webhook_url",
        "webhook_scheme",
        "deliveries",
        "active_keys",
        "keys_last_used_at",
    )
    search_fields = ("partner_id", "prefix", "name")
    fields = (
        "partner_id",
        "prefix",
        "name",
        "webhook_url",
        "webhook_scheme",
        "rate_limit",
        "deliveries",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("deliveries", "created_at", "updated_at")
    inlines = (ApiKeyInline, WebhookSecretInline)
    actions = ("create_api_key", "rotate_webhook_secret")
    object_actions = actions
    object_action_labels = {"create_api_key": "Create an API key", "rotate_webhook_secret": "Rotate webhook secret"}

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
        # The prefix names the partner's records in Zoho: changing it would orphan them.
        return (*self.readonly_fields, "partner_id", "prefix") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # orders point to partners; a partner is never removed

    @admin.display(description="webhook deliveries", ordering="deliveries_paused")
    def deliveries(self, partner):
        # words, not Django's boolean icons: a red ⊗ read as an alarm for "not paused"
        return "PAUSED by staff" if partner.deliveries_paused else "running"

    @admin.display(description="active API keys", ordering="active_key_count")
    def active_keys(self, partner):
        return partner.active_key_count

    @admin.display(description="API key last used", ordering="keys_last_used")
    def keys_last_used_at(self, partner):
        return partner.keys_last_used

    def has_create_key_permission(self, request):
        return request.user.has_perm("partners.add_apikey")

    def has_rotate_secret_permission(self, request):
        return request.user.has_perm("partners.add_webhooksecret")

    def _one_partner(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one partner.", messages.WARNING)
            return None
        return queryset.get()

    def _change_url(self, partner) -> str:
        return reverse("admin:partners_partner_change", args=[partner.pk])

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
        return request.user.has_perm("partners.change_apikey")

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


@admin.register(WebhookSecret)
class WebhookSecretAdmin(ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    """Visible only with ``partners.view_webhooksecret`` (not Support, not Ops); prefixes only.
    New secrets are made by the partner's "Rotate the webhook signing secret" action."""

    list_display = ("secret_prefix", "partner", "created_at", "expires_at")
    list_filter = ("partner",)
    fields = ("partner", "secret_prefix", "created_at", "expires_at")
    readonly_fields = fields

    @admin.display(description="secret")
    def secret_prefix(self, secret):
        return f"{secret.secret[:10]}…"
