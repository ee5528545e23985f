"""The transactional outbox (``t2mobile_webhook_logs``), its delivery attempts, and partner secrets.

An event row is written in the same transaction as the change it reports; a worker delivers it.
``body`` holds the exact bytes that are signed and sent, serialised once.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookLog(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        SENT = "SENT"
        FAILED = "FAILED"

    class EventType(models.TextChoices):
        ORDER_FULFILLED = "ORDER_FULFILLED"
        ORDER_FAILED = "ORDER_FAILED"
        SUBSCRIPTION_RENEWED = "SUBSCRIPTION_RENEWED"
        EXPIRY_REMINDER = "EXPIRY_REMINDER"
        SUBSCRIPTION_EXPIRED = "SUBSCRIPTION_EXPIRED"
        PING = "PING"  # POST /t2mobile/webhooks/test: never disables an endpoint, three attempts at most

    event_id = models.CharField(max_length=64, unique=True)
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="webhook_logs")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_logs"
    )
    payload = models.JSONField()
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    retries = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    dedup_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    # Set by the outbox to the moment written into the signed body's createdAt (the two are equal).
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "t2mobile_webhook_logs"
        indexes = [
            models.Index(fields=["status", "next_retry_at"], name="webhook_status_next_retry_idx"),
            models.Index(fields=["order", "created_at"], name="webhook_order_created_idx"),
            models.Index(fields=["partner", "status"], name="webhook_partner_status_idx"),
            models.Index(fields=["status", "created_at"], name="webhook_status_created_idx"),
            # GET /t2mobile/events: a partner's events, newest first, by keyset
            models.Index(fields=["partner", "-created_at", "-id"], name="webhook_partner_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class WebhookAttempt(models.Model):
    log = models.ForeignKey(WebhookLog, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField(default=timezone.now, help_text="when the request started")
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        db_table = "t2mobile_webhook_attempts"
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"attempt at {self.attempted_at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"


class WebhookEndpointState(models.Model):
    """How a partner's endpoint is doing: while it keeps failing, one attempt at a time is sent to it.

    ``consecutive_failures`` resets on the first 2xx, and so does ``failing_since`` (the first failure
    after the last success). ``busy_until`` is the lease of the one attempt in flight while the
    endpoint is failing; it expires by itself if the worker holding it dies. A *disabled* endpoint
    (``disabled_at``: it answered 410, or failed every attempt for WEBHOOK_DISABLE_AFTER_DAYS) gets
    no deliveries until staff enable it; its events wait.
    """

    class DisabledReason(models.TextChoices):
        GONE = "GONE", "the endpoint answered 410 Gone"
        FAILING = "FAILING", "every attempt failed for WEBHOOK_DISABLE_AFTER_DAYS"

    partner = models.OneToOneField(
        "partners.Partner", on_delete=models.CASCADE, primary_key=True, related_name="webhook_endpoint_state"
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    busy_until = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="first failure after the last success")
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=10, choices=DisabledReason.choices, blank=True)

    class Meta:
        db_table = "t2mobile_webhook_endpoint_states"

    def __str__(self) -> str:
        return f"endpoint of {self.partner_id}: {self.consecutive_failures} failures in a row"

    @property
    def is_failing(self) -> bool:
        return self.consecutive_failures > 0

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None
