"""Reads of the webhook outbox: which events are due for a partner, which endpoints are disabled,
which secrets sign, and a partner's own events as GET /t2mobile/events shows them (newest first, by
keyset)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, IntegerField, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from partners.models import Partner, WebhookSecret
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog


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
    partner_code: str = ""  # the partner's partner_id, the metrics' label

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
            "partner__partner_id",
        )
        .first()
    )
    if row is None:
        return None
    status, partner_id, paused, failures, busy_until, url, scheme, disabled_at, code = row
    return DeliveryGate(
        status, partner_id, paused, failures or 0, busy_until, url, scheme, disabled_at is not None, code
    )


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


# --- A partner's own events (GET /t2mobile/events) -------------------------------------------------

# Our ids are ``evt_`` and 32 hex digits; anything that could not be an id (too long, NUL, other
# characters) is "not found" without a query.
EVENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def event_id_plausible(event_id: str) -> bool:
    return EVENT_ID_RE.fullmatch(event_id) is not None


def partner_events(*, partner: Partner) -> QuerySet[WebhookLog]:
    """The partner's events with ``attempt_count``, ``last_attempt_at`` and ``order_ref`` (the
    order's ``orderId`` as the event's ``data`` carries it; None for a PING).

    The attempt figures are correlated subqueries on the attempts' ``log`` index, evaluated only for the rows a page
    returns (a join and GROUP BY would aggregate every event of the partner before the LIMIT).
    ``payload`` and ``response`` are left unread: the item is rendered from ``body``.
    """
    attempts = WebhookAttempt.objects.filter(log=OuterRef("pk")).order_by()
    return (
        WebhookLog.objects.filter(partner=partner)
        .only("pk", "event_id", "event_type", "status", "created_at", "next_retry_at", "body", "partner_id")
        .annotate(
            attempt_count=Coalesce(
                Subquery(attempts.values("log").annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()),
                Value(0),
            ),
            last_attempt_at=Subquery(attempts.values("log").annotate(last=Max("attempted_at")).values("last")[:1]),
            order_ref=KT("payload__data__orderId"),
        )
    )


@dataclass(frozen=True)
class EventPage:
    events: list[WebhookLog]
    next_after: tuple[datetime, int] | None  # (created_at, pk) of the page's last event; None on the last page


def partner_events_page(
    *,
    partner: Partner,
    limit: int,
    types: list[str] | None = None,
    order_ref: str | None = None,
    status: str | None = None,
    created_since: datetime | None = None,
    created_before: datetime | None = None,
    after: tuple[datetime, int] | None = None,
) -> EventPage:
    """One page of the partner's events, newest first (``created_at``, then pk, both descending), on
    the index (partner, -created_at, -id). ``after`` is the keyset of the previous page's last event:
    an event is on exactly one page however many are recorded meanwhile (new ones sort before it).
    ``order_ref`` is the order's ``orderId`` as the event's ``data`` carries it (this room never reads
    orders)."""
    events = partner_events(partner=partner).order_by("-created_at", "-pk")
    if types:
        events = events.filter(event_type__in=types)
    if order_ref is not None:
        events = events.filter(payload__data__orderId=order_ref)
    if status is not None:
        events = events.filter(status=status)
    if created_since is not None:
        events = events.filter(created_at__gte=created_since)
    if created_before is not None:
        events = events.filter(created_at__lt=created_before)
    if after is not None:
        created_at, pk = after
        # (created_at, pk) < (after): a range on the index's leading time column, then the tie on pk
        events = events.filter(created_at__lte=created_at).exclude(created_at=created_at, pk__gte=pk)
    page = list(events[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return EventPage(events=page, next_after=(page[-1].created_at, page[-1].pk) if more and page else None)


def partner_event(*, partner: Partner, event_id: str) -> WebhookLog | None:
    """One of the partner's events by its ``evt_…`` id, with its attempts (``attempt_log``, oldest
    first); None for an unknown id or another partner's."""
    if not event_id_plausible(event_id):
        return None
    log = partner_events(partner=partner).filter(event_id=event_id).first()
    if log is not None:
        log.attempt_log = list(event_attempts(log=log))
    return log


def event_attempts(*, log: WebhookLog) -> QuerySet[WebhookAttempt]:
    """The event's attempts, oldest first, without the receiver's response body (never shown to it)."""
    return (
        WebhookAttempt.objects.filter(log_id=log.pk)
        .order_by("attempted_at", "pk")
        .only("pk", "log_id", "attempted_at", "duration_ms", "status_code", "error")
    )
