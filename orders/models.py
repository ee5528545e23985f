"""Tables of the order flow: partners and their API keys, idempotency records, the local copy of
the Zoho catalogue, orders and their fulfilments.

Table names are fixed by the contract (``../shared/spec/orders-and-jobs.md``). Models hold fields,
named constraints and small derived properties only; every write goes through ``services.py``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Tenure(models.TextChoices):
    ONE_MONTH = "1_MONTH", "1 month"
    THREE_MONTHS = "3_MONTHS", "3 months"
    SIX_MONTHS = "6_MONTHS", "6 months"
    TWELVE_MONTHS = "12_MONTHS", "12 months"
    TWENTY_FOUR_MONTHS = "24_MONTHS", "24 months"
    THIRTY_SIX_MONTHS = "36_MONTHS", "36 months"

    @classmethod
    def months_of(cls, tenure: str) -> int:
        return int(str(tenure).split("_", 1)[0])


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


class IdempotencyRecord(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "IN_PROGRESS"
        DONE = "DONE"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "t2mobile_idempotency_records"
        constraints = [
            models.UniqueConstraint(fields=["partner", "key"], name="idempotency_unique_partner_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class Product(models.Model):
    """The local copy of one Zoho item; ``item_id`` is the partner-facing ``productId``."""

    class ZohoStatus(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"

    item_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    sku = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    rate = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    unit = models.CharField(max_length=50, blank=True)
    zoho_status = models.CharField(max_length=16, choices=ZohoStatus.choices, default=ZohoStatus.ACTIVE)
    is_published = models.BooleanField(default=False)
    published_set_by_staff = models.BooleanField(
        default=False, help_text="staff chose the published flag; a sync never overrides it"
    )
    provisioner = models.CharField(max_length=50, default="zoho_sales_order")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "t2mobile_products"
        indexes = [models.Index(fields=["is_published", "zoho_status"], name="product_published_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku or self.item_id})"


class ProductPlan(models.Model):
    """A tenure a product is sold for, at a price; ``set_by_staff`` rows are never overwritten."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="plans")
    tenure = models.CharField(max_length=16, choices=Tenure.choices)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    is_active = models.BooleanField(default=True)
    set_by_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "t2mobile_product_plans"
        constraints = [
            models.UniqueConstraint(fields=["product", "tenure"], name="product_plan_unique_tenure"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_plan_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.tenure} at {self.price}"


class Order(models.Model):
    class Type(models.TextChoices):
        NEW = "NEW"
        RENEWAL = "RENEWAL"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending (on hold)"
        PROCESSING = "PROCESSING"
        FULFILLED = "FULFILLED"
        FAILED = "FAILED"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="orders")
    order_id = models.CharField(max_length=64)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.NEW)
    renewal_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="renewals")
    customer_id = models.CharField(max_length=64)
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(max_length=254)
    customer_phone = models.CharField(max_length=16)
    product_id = models.CharField(max_length=64, help_text="Zoho item id")
    tenure = models.CharField(max_length=16, choices=Tenure.choices)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="NGN")
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    failure_reason = models.CharField(max_length=300, blank=True)
    zoho_sales_order_id = models.CharField(max_length=64, blank=True)
    activation_reference = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "t2mobile_orders"
        constraints = [
            models.UniqueConstraint(fields=["partner", "order_id"], name="order_unique_partner_order_id"),
            models.UniqueConstraint(fields=["partner", "idempotency_key"], name="order_unique_partner_idempotency_key"),
            models.CheckConstraint(
                condition=Q(quantity__gte=1) & Q(quantity__lte=1000), name="order_quantity_1_to_1000"
            ),
            models.CheckConstraint(
                condition=(Q(type="RENEWAL", renewal_of__isnull=False) | Q(type="NEW", renewal_of__isnull=True)),
                name="order_renewal_of_matches_type",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="order_status_updated_idx"),
            models.Index(fields=["partner", "customer_id"], name="order_partner_customer_idx"),
        ]

    def __str__(self) -> str:
        return self.order_id

    @property
    def total_price(self):
        return self.unit_price * self.quantity


class Fulfilment(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        ACTIVE = "ACTIVE"
        FAILED = "FAILED"
        EXPIRED = "EXPIRED"

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="fulfilment")
    activation_reference = models.CharField(max_length=64, blank=True)
    sales_order_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    starts_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    #: True from the claim of an attempt until its outcome is written: if it stays True while no
    #: process holds the order's advisory lock, the attempt's worker died (orders/provisioning.py).
    attempt_running = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "t2mobile_fulfilments"
        indexes = [
            models.Index(fields=["status", "expires_at"], name="fulfilment_status_expires_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="fulfilment_status_next_idx"),
            # The sweeper's every-minute look for dead attempts reads only the few running ones.
            models.Index(fields=["order"], condition=Q(attempt_running=True), name="fulfilment_running_idx"),
        ]

    def __str__(self) -> str:
        return f"fulfilment of {self.order_id}"
