"""Tables of the order flow: orders, their fulfilments, the subscriptions they open and extend, the
idempotency records of intake, and the Zoho contacts the provisioner remembers.

Table names are fixed by the contract (``../shared/spec/orders-and-jobs.md``). Models hold fields,
named constraints and small derived properties only; every write goes through ``services.py``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from catalogue.models import Tenure
from partners.models import Partner


class IdempotencyRecord(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "IN_PROGRESS"
        DONE = "DONE"

    # No index of its own: the unique (partner, key) index leads with the partner (a planner without
    # statistics would otherwise take the single-column one and filter every record of the partner).
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", db_index=False)
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


class Order(models.Model):
    class Type(models.TextChoices):
        NEW = "NEW"
        RENEWAL = "RENEWAL"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending (on hold)"
        PROCESSING = "PROCESSING"
        FULFILLED = "FULFILLED"
        FAILED = "FAILED"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="orders", db_index=False)
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
    #: The subscription this order opened (NEW) or extended (RENEWAL); set when it is provisioned.
    subscription = models.ForeignKey(
        "Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
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

    class Numbering(models.TextChoices):
        OURS = "ours", "our number (<prefix>-<orderId>)"
        AUTO = "auto", "Zoho's number, our reference (<prefix>-<orderId>)"
        LEGACY = "legacy", "made before prefixes (reference = orderId): looked up once"

    #: Derived once, before the sales order is created, and read from here by every later attempt.
    activation_reference = models.CharField(max_length=64, blank=True)
    sales_order_id = models.CharField(max_length=64, blank=True)
    #: How this order's sales order is named in Zoho, fixed before its first create
    #: (``orders/sales_order_naming.py``): a change of ZOHO_SALES_ORDER_NUMBERING or of the partner's
    #: prefix never makes a second one.
    sales_order_numbering = models.CharField(max_length=8, choices=Numbering.choices, blank=True)
    sales_order_name = models.CharField(max_length=80, blank=True)
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
        return f"Zoho fulfilment of order {self.order.order_id}"


class Subscription(models.Model):
    """What the customer holds, over all its orders: opened by the provisioning of a NEW order (its
    ``origin_order``), extended by each RENEWAL's. The reminder and expiry scans read this table; a
    fulfilment keeps the period its own order paid for, as history."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        EXPIRED = "EXPIRED"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="subscriptions")
    customer_id = models.CharField(max_length=64)
    product_id = models.CharField(max_length=64, help_text="Zoho item id")
    activation_reference = models.CharField(max_length=64)
    origin_order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="opened_subscription")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "t2mobile_subscriptions"
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "activation_reference"], name="subscription_unique_partner_activation_reference"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="subscription_status_exp_idx"),
        ]

    def __str__(self) -> str:
        return self.activation_reference


class ZohoContact(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    customer_id = models.CharField(max_length=64)
    contact_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "t2mobile_zoho_contacts"
        constraints = [
            models.UniqueConstraint(fields=["partner", "customer_id"], name="zoho_contact_unique_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} → {self.contact_id}"
