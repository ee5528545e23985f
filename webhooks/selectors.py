"""Reads of the webhook outbox: which events are due for a partner, which endpoints are disabled, and
which secrets sign."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from partners.models import Partner, WebhookSecret
from webhooks.models import WebhookEndpointState, WebhookLog


def earlier_pending_of_same_order() -> Exists:
    """True for an event while an earlier event of its order is still PENDING (it must wait)."""
    return Exists(
        WebhookLog.objects.filter(
            order_id=OuterRef("order_id"), status=WebhookLog.Status.PENDING, pk__lt=OuterRef("pk")
        )
    )


def events_due(*, partner: Partner, now: datetime) -> QuerySet[WebhookLog]:
    """PENDING events of ``partner`` whose time has come and that no earlier event of the order blocks,
    oldest due first."""
    return (
        WebhookLog.objects.filter(partner=partner, status=WebhookLog.Status.PENDING, next_retry_at__lte=now)
        .exclude(earlier_pending_of_same_order())
        .order_by("next_retry_at", "pk")
    )


@dataclass(frozen=True)
class DeliveryGate:
    """What decides, in one cheap read, whether an event could be attempted now."""

    status: str
    partner_id: int
    partner_paused: bool
    endpoint_failures: int
    endpoint_busy_until: datetime | None
    webhook_url: str = ""
    webhook_scheme: str = ""
    endpoint_disabled: bool = False  # staff must enable it; its events wait

    def endpoint_busy(self, *, now: datetime, held: datetime | None = None) -> bool:
        busy_until = self.endpoint_busy_until
        return self.endpoint_failures > 0 and busy_until is not None and busy_until > now and busy_until != held


def delivery_gate(*, log_pk: int) -> DeliveryGate | None:
    row = (
        WebhookLog.objects.filter(pk=log_pk)
        .values_list(
            "status",
            "partner_id",
            "partner__deliveries_paused",
            "partner__webhook_endpoint_state__consecutive_failures",
            "partner__webhook_endpoint_state__busy_until",
            "partner__webhook_url",
            "partner__webhook_scheme",
            "partner__webhook_endpoint_state__disabled_at",
        )
        .first()
    )
    if row is None:
        return None
    status, partner_id, paused, failures, busy_until, url, scheme, disabled_at = row
    return DeliveryGate(status, partner_id, paused, failures or 0, busy_until, url, scheme, disabled_at is not None)


def partners_with_due_events(*, now: datetime) -> QuerySet[Partner]:
    """Unpaused partners, with an endpoint not disabled, that have events due."""
    return (
        Partner.objects.filter(
            deliveries_paused=False,
            pk__in=WebhookLog.objects.filter(status=WebhookLog.Status.PENDING, next_retry_at__lte=now).values(
                "partner_id"
            ),
        )
        .exclude(pk__in=WebhookEndpointState.objects.filter(disabled_at__isnull=False).values("partner_id"))
        .order_by("pk")
    )


def endpoints_disabled() -> QuerySet[WebhookEndpointState]:
    """The disabled endpoints, longest disabled first, with their partner (``partner.partner_id``),
    ``disabled_at`` and ``disabled_reason``: for the admin overview and the health readout."""
    return (
        WebhookEndpointState.objects.filter(disabled_at__isnull=False)
        .select_related("partner")
        .only("partner_id", "partner__partner_id", "disabled_at", "disabled_reason")
        .order_by("disabled_at", "partner_id")
    )


def secrets_active(*, partner_id: int, now: datetime | None = None) -> list[str]:
    """The secrets that sign now, newest first: those without an end, or whose grace has not ended."""
    now = now or timezone.now()
    rows = WebhookSecret.objects.filter(partner_id=partner_id).order_by("-created_at", "-pk")
    return [secret for secret, ends in rows.values_list("secret", "expires_at") if ends is None or ends > now]
