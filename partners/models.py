"""Who calls us and whom we call back: partners, their API keys and their webhook signing secrets.

Table names are fixed by the contract (``../shared/spec/orders-and-jobs.md``); the tables were
created by the ``orders`` and ``webhooks`` apps and moved here without a change to the database
(``migrations/0001_initial.py``). Every write goes through ``services.py``.
"""

from __future__ import annotations

from django.db import models


class WebhookScheme(models.TextChoices):
    STANDARD_WEBHOOKS = "standard-webhooks-v1", "Standard Webhooks v1"
    HMAC_SHA256_HEX = "hmac-sha256-hex", "HMAC-SHA256 hex (X-Signature)"


class Partner(models.Model):
    """A partner that calls our API; ``partner_id`` is how we name ourselves to it."""

    partner_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_scheme = models.CharField(
        max_length=32, choices=WebhookScheme.choices, default=WebhookScheme.STANDARD_WEBHOOKS
    )
    rate_limit = models.CharField(
        max_length=20, blank=True, help_text="e.g. 100/m; empty means the T2MOBILE_RATE_LIMIT setting"
    )
    deliveries_paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "t2mobile_partners"

    def __str__(self) -> str:
        return f"{self.name} ({self.partner_id})"

    # DRF's IsAuthenticated-style checks read this on request.user.
    is_authenticated = True


class ApiKey(models.Model):
    """A partner's API key, stored as a SHA-256 hash; the plain key is shown once at creation."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, db_index=True, help_text="first characters, to tell keys apart")
    hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "t2mobile_api_keys"
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({'revoked' if self.revoked_at else 'active'})"


class WebhookSecret(models.Model):
    """A partner's signing secret; several may be active during a rotation's grace period."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhook_secrets")
    secret = models.CharField(max_length=200, help_text="whsec_<base64> for Standard Webhooks")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="end of the rotation grace period")

    class Meta:
        db_table = "t2mobile_webhook_secrets"

    def __str__(self) -> str:
        return f"secret {self.secret[:10]}… of {self.partner_id}"
