"""Who calls us and whom we call back: partners, their API keys and their webhook signing secrets.

Table names are fixed by the contract (``../shared/spec/orders-and-jobs.md``); the tables were
created by the ``orders`` and ``webhooks`` apps and moved here without a change to the database
(``migrations/0001_initial.py``). Every write goes through ``services.py``.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from core.rates import RATE_FORM, Rate

#: A partner's prefix names what we make for it outside our database: its Zoho sales orders
#: (``<prefix>-<orderId>``) and contacts (``<prefix>-<customerId>``). Capitals and digits, 2 to 8.
PREFIX_PATTERN = r"^[A-Z][A-Z0-9]{1,7}$"
prefix_validator = RegexValidator(
    PREFIX_PATTERN, "2 to 8 capital letters or digits, starting with a letter (for example T2M)."
)


def partner_prefix_free(partner_id: str) -> str:
    """A prefix no partner has yet, from the capitals and digits of ``partner_id``."""
    base = re.sub(r"[^A-Z0-9]", "", partner_id.upper()).lstrip("0123456789")[:6].ljust(2, "X")
    prefix, number = base, 2
    while Partner.objects.filter(prefix=prefix).exists():
        prefix, number = f"{base}{number}"[:8], number + 1
    return prefix


def rate_limit_validator(value: str) -> None:
    """A partner's ``rate_limit`` must be what the throttle reads (``Rate.parse``, limit at least 1)."""
    try:
        Rate.parse(value)
    except ValueError:
        raise ValidationError(
            "%(value)s is not a rate limit. Enter " + RATE_FORM + ", or leave it empty for T2MOBILE_RATE_LIMIT.",
            code="invalid_rate",
            params={"value": value},
        ) from None


class WebhookScheme(models.TextChoices):
    STANDARD_WEBHOOKS = "standard-webhooks-v1", "Standard Webhooks v1"
    HMAC_SHA256_HEX = "hmac-sha256-hex", "HMAC-SHA256 hex (X-Signature)"


class Partner(models.Model):
    """A partner that calls our API; ``partner_id`` is how we name ourselves to it."""

    partner_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    prefix = models.CharField(
        max_length=8,
        unique=True,
        validators=[prefix_validator],
        help_text="Names this partner's Zoho sales orders (PREFIX-orderId) and contacts; set once, never changed.",
    )
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_scheme = models.CharField(
        max_length=32, choices=WebhookScheme.choices, default=WebhookScheme.STANDARD_WEBHOOKS
    )
    rate_limit = models.CharField(
        max_length=20,
        blank=True,
        validators=[rate_limit_validator],
        help_text=(
            "Requests per period, e.g. 100/m, 5000/h or 90/6s (s, m, h, d); empty means the T2MOBILE_RATE_LIMIT setting"
        ),
    )
    deliveries_paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "t2mobile_partners"

    def __str__(self) -> str:
        return f"{self.name} ({self.partner_id})"

    def save(self, *args, **kwargs):
        # The admin form requires a prefix; a partner made in code without one (a command, a test)
        # gets one derived from its partner_id.
        if not self.prefix:
            self.prefix = partner_prefix_free(self.partner_id)
        super().save(*args, **kwargs)

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
