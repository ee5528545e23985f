"""Tables of the integrations: what we remember about Zoho between calls.

- ``ZohoContact``: the Zoho contact of a partner's customer, so a returning customer costs no
  contact calls.
- ``CatalogueSync``: one row per catalogue sync (when, what changed, or why it failed), read by the
  admin overview.
"""

from __future__ import annotations

from django.db import models


class ZohoContact(models.Model):
    partner = models.ForeignKey("orders.Partner", on_delete=models.CASCADE, related_name="+")
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
