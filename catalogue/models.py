"""What T2Mobile may sell: the local copy of the Zoho catalogue, its plans, and the sync runs.

``Tenure`` is the catalogue's word for how long a plan runs; orders are placed for a tenure. Table
names are fixed by the contract; the tables were created by the ``orders`` and ``integrations`` apps
and moved here without a change to the database (``migrations/0001_initial.py``).
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


class CatalogueSync(models.Model):
    class Status(models.TextChoices):
        RUNNING = "RUNNING"
        DONE = "DONE"
        FAILED = "FAILED"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    items_seen = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unpublished = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "t2mobile_catalogue_syncs"
        ordering = ["-started_at"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"catalogue sync {self.started_at:%Y-%m-%d %H:%M} {self.status}"
