"""The events API's shapes: the list's query and cursor, the recover request, and an event as the
partner sees it (camelCase, ISO 8601 UTC with ``Z``; ``event`` is the very body that was signed).

The cursor is opaque to the partner: the base64url JSON of the keyset (``created_at`` to the
microsecond and the pk) of the last event of the page. Anything else in its place is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timedelta

from rest_framework import serializers

from core.times import iso_utc
from webhooks.models import WebhookLog

# The contract's orderId rule: 1–64 chars of [A-Za-z0-9_-]; a filter outside it is a 400, never a query.
ORDER_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
PK_MAX = 2**63 - 1
CURSOR_MAX_CHARS = 200  # ours are about 90


def event_cursor(keyset: tuple[datetime, int]) -> str:
    created_at, pk = keyset
    raw = json.dumps({"t": created_at.isoformat(), "id": pk}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def event_cursor_parse(cursor: str) -> tuple[datetime, int]:
    """The keyset a cursor of ``event_cursor`` holds; ValueError for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        moment, pk = document["t"], document["id"]
        if not isinstance(moment, str) or not isinstance(pk, int) or isinstance(pk, bool) or not 0 < pk <= PK_MAX:
            raise ValueError
        created_at = datetime.fromisoformat(moment)
        if created_at.utcoffset() != timedelta(0):  # ours are UTC; PostgreSQL refuses some offsets
            raise ValueError
        return created_at, pk
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError, RecursionError, OverflowError):
        raise ValueError("not a cursor of ours") from None


class EventListQuerySerializer(serializers.Serializer):
    """GET /t2mobile/events query parameters."""

    type = serializers.CharField(
        required=False,
        max_length=500,
        help_text="Comma-separated event types, e.g. `ORDER_FULFILLED,ORDER_FAILED`; each one of: "
        + ", ".join(WebhookLog.EventType.values),
    )
    orderId = serializers.CharField(required=False, max_length=64, help_text="Only the events about this order.")
    deliveryStatus = serializers.ChoiceField(choices=WebhookLog.Status.choices, required=False)
    createdSince = serializers.DateTimeField(
        required=False, help_text="ISO 8601 time; events created at or after it (e.g. `2026-11-23T00:00:00Z`)."
    )
    createdBefore = serializers.DateTimeField(required=False, help_text="ISO 8601 time; events created before it.")
    limit = serializers.IntegerField(min_value=1, max_value=200, required=False, default=50)
    cursor = serializers.CharField(
        required=False, max_length=CURSOR_MAX_CHARS, help_text="`nextCursor` of the previous page, as it came."
    )

    def validate_type(self, value: str) -> list[str]:
        types = [part.strip() for part in value.split(",")]
        unknown = [part for part in types if part not in WebhookLog.EventType.values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown event type(s): {', '.join(unknown)[:200]}. Use: {', '.join(WebhookLog.EventType.values)}."
            )
        return list(dict.fromkeys(types))

    def validate_orderId(self, value: str) -> str:
        if not ORDER_ID_RE.fullmatch(value):
            raise serializers.ValidationError("Use 1 to 64 characters of A-Z, a-z, 0-9, _ and -.")
        return value

    def validate_cursor(self, value: str) -> tuple[datetime, int]:
        try:
            return event_cursor_parse(value)
        except ValueError:
            raise serializers.ValidationError("This cursor is not valid.") from None

    def validate(self, attrs):
        since, before = attrs.get("createdSince"), attrs.get("createdBefore")
        if since is not None and before is not None and since >= before:
            raise serializers.ValidationError({"createdBefore": ["createdBefore must be later than createdSince."]})
        return attrs


class RecoverRequestSerializer(serializers.Serializer):
    """POST /t2mobile/events/recover body; unknown fields are ignored."""

    since = serializers.DateTimeField(help_text="ISO 8601 time: FAILED events created at or after it.")
    until = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="ISO 8601 time, exclusive; null or absent: now."
    )


# The partner reads a short, stable error, never our HTTP library's text (which names the pinned
# address, the library and its classes): the first prefix of the recorded error that matches; None
# keeps our own wording ("timeout after 15 s").
PARTNER_ERRORS: tuple[tuple[str, str | None], ...] = (
    ("timeout after", None),
    ("refused:", "URL refused: it must be https on a public address"),
    ("SSLError", "TLS error"),
    ("ConnectTimeout", "timeout"),
    ("ReadTimeout", "timeout"),
    ("ConnectionError", "connection error"),
    ("ChunkedEncodingError", "broken response"),
    ("ContentDecodingError", "broken response"),
    ("TooManyRedirects", "redirect"),
    ("no active webhook secret", "not sent: no signing secret on our side"),
)


def attempt_error_for_partner(error: str) -> str | None:
    if not error:
        return None
    for prefix, shown in PARTNER_ERRORS:
        if error.startswith(prefix):
            return error[:100] if shown is None else shown
    return "request error"


class AttemptSerializer(serializers.Serializer):
    """One delivery attempt, without the receiver's own response body."""

    attemptedAt = serializers.SerializerMethodField()
    durationMs = serializers.IntegerField(source="duration_ms")
    statusCode = serializers.IntegerField(source="status_code", allow_null=True)
    error = serializers.SerializerMethodField(help_text="A short error such as `timeout` when there was no answer.")

    def get_attemptedAt(self, attempt) -> str:
        return iso_utc(attempt.attempted_at)

    def get_error(self, attempt) -> str | None:
        return attempt_error_for_partner(attempt.error)


class EventSerializer(serializers.Serializer):
    """One event of GET /t2mobile/events (a ``partner_events`` row)."""

    id = serializers.CharField(source="event_id")
    type = serializers.ChoiceField(source="event_type", choices=WebhookLog.EventType.choices)
    createdAt = serializers.SerializerMethodField()
    orderId = serializers.SerializerMethodField()
    deliveryStatus = serializers.ChoiceField(source="status", choices=WebhookLog.Status.choices)
    attempts = serializers.IntegerField(source="attempt_count", help_text="Delivery attempts made so far.")
    lastAttemptAt = serializers.SerializerMethodField()
    nextAttemptAt = serializers.SerializerMethodField(help_text="When the next attempt is due; only while PENDING.")
    event = serializers.SerializerMethodField(
        help_text="The event exactly as it was signed and sent: feed it to your webhook handler."
    )

    def get_createdAt(self, log) -> str:
        return iso_utc(log.created_at)

    def get_orderId(self, log) -> str | None:
        return log.order_ref

    def get_lastAttemptAt(self, log) -> str | None:
        return iso_utc(log.last_attempt_at)

    def get_nextAttemptAt(self, log) -> str | None:
        return iso_utc(log.next_retry_at) if log.status == WebhookLog.Status.PENDING else None

    def get_event(self, log) -> dict:
        return json.loads(log.body)


class EventDetailSerializer(EventSerializer):
    """GET /t2mobile/events/{id}: the event plus its attempts (a ``partner_event`` row)."""

    success = serializers.SerializerMethodField()
    attemptLog = AttemptSerializer(source="attempt_log", many=True)

    def get_success(self, log) -> bool:
        return True


# --- Schema-only shapes (drf-spectacular) ---------------------------------------------------------


class EventListSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    events = EventSerializer(many=True)
    nextCursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null at the end."
    )


class ResendAcceptedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    id = serializers.CharField()
    deliveryStatus = serializers.ChoiceField(
        choices=WebhookLog.Status.choices, help_text="Always PENDING: the event waits for its new delivery."
    )


class RecoverAcceptedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    requeued = serializers.IntegerField(help_text="FAILED events of the window queued for delivery again.")


class PingAcceptedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    id = serializers.CharField(help_text="The PING event's id; its outcome shows in GET /t2mobile/events/{id}.")
