"""The events API under ``/t2mobile/``: what we sent the partner, and its replay (partner-api.md,
"Events"). Thin DRF views: authenticate and throttle as every partner endpoint does (the defaults),
validate with a serializer, call a selector or a ``webhooks.controls`` service, render. Errors are
raised, never built here (see ``core.errors``).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core import errors
from core.openapi import REQUEST_ID_HEADER, error_responses
from webhooks.controls import partner_event_resend, partner_events_recover, partner_ping_send
from webhooks.selectors import partner_event, partner_events_page
from webhooks.serializers import (
    EventDetailSerializer,
    EventListQuerySerializer,
    EventListSerializer,
    EventSerializer,
    PingAcceptedSerializer,
    RecoverAcceptedSerializer,
    RecoverRequestSerializer,
    ResendAcceptedSerializer,
    event_cursor,
)

POST_ERRORS = (
    "MALFORMED_JSON",
    "VALIDATION_ERROR",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "METHOD_NOT_ALLOWED",
)

EVENT_ID_PATH = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The event id (`evt_…`), as in the webhook-id header."
)

_EVENT_EXAMPLE = {
    "id": "evt_2f1c9a7e5b0d4c1e9f3a6b8c7d2e1f00",
    "type": "ORDER_FULFILLED",
    "createdAt": "2026-11-23T10:00:04Z",
    "orderId": "T2M123456",
    "deliveryStatus": "SENT",
    "attempts": 2,
    "lastAttemptAt": "2026-11-23T10:00:09Z",
    "nextAttemptAt": None,
    "event": {
        "id": "evt_2f1c9a7e5b0d4c1e9f3a6b8c7d2e1f00",
        "type": "ORDER_FULFILLED",
        "createdAt": "2026-11-23T10:00:04Z",
        "partnerId": "ICONTECH001",
        "data": {"orderId": "T2M123456", "status": "FULFILLED", "activationReference": "LIC-7QK2-99XA"},
    },
}
_ATTEMPT_LOG_EXAMPLE = [
    {"attemptedAt": "2026-11-23T10:00:04Z", "durationMs": 15000, "statusCode": None, "error": "timeout"},
    {"attemptedAt": "2026-11-23T10:00:09Z", "durationMs": 84, "statusCode": 200, "error": None},
]


def _json_object_or_nothing(request) -> dict:
    """The body of a POST whose body carries nothing we need: none at all, or a JSON object (ignored).

    Reading ``request.data`` is what makes a non-JSON ``Content-Type`` a 415 and bad JSON a 400, as on
    every POST of the partner API.
    """
    if request.stream is None:
        return {}
    payload = request.data
    if not isinstance(payload, dict):
        raise errors.MalformedJson()
    return payload


class EventListView(APIView):
    @extend_schema(
        operation_id="listEvents",
        summary="This partner's webhook events, newest first (cursor pagination)",
        description="Every event we recorded for you, each with the exact body that was signed and sent "
        "(`event`) and where its delivery stands. Kept as long as their log rows: 30 days delivered, 90 days "
        "failed. Filters combine (AND); `type` takes several types separated by commas. A time without an "
        "offset is read in Lagos time; send `Z` times.",
        parameters=[REQUEST_ID_HEADER, EventListQuerySerializer],
        responses={
            200: OpenApiResponse(
                EventListSerializer,
                examples=[
                    OpenApiExample(
                        "A page",
                        value={"success": True, "events": [_EVENT_EXAMPLE], "nextCursor": "eyJ0IjoiMjAyNi0xMS0y…"},
                    )
                ],
            ),
            **error_responses("VALIDATION_ERROR"),
        },
    )
    def get(self, request):
        query = EventListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        page = partner_events_page(
            partner=request.user,
            limit=params["limit"],
            types=params.get("type"),
            order_ref=params.get("orderId"),
            status=params.get("deliveryStatus"),
            created_since=params.get("createdSince"),
            created_before=params.get("createdBefore"),
            after=params.get("cursor"),
        )
        return Response(
            {
                "success": True,
                "events": EventSerializer(page.events, many=True).data,
                "nextCursor": event_cursor(page.next_after) if page.next_after else None,
            }
        )


class EventDetailView(APIView):
    @extend_schema(
        operation_id="getEvent",
        summary="One webhook event and its delivery attempts",
        description="The event as listed, plus `attemptLog`: every attempt with its HTTP status or a short "
        "error (such as `timeout`). Your endpoint's response bodies are never shown. Another partner's event "
        "is EVENT_NOT_FOUND.",
        parameters=[EVENT_ID_PATH, REQUEST_ID_HEADER],
        responses={
            200: OpenApiResponse(
                EventDetailSerializer,
                examples=[
                    OpenApiExample(
                        "Delivered on the second attempt",
                        value={"success": True, **_EVENT_EXAMPLE, "attemptLog": _ATTEMPT_LOG_EXAMPLE},
                    )
                ],
            ),
            **error_responses("EVENT_NOT_FOUND"),
        },
    )
    def get(self, request, id: str):  # noqa: A002 - the contract's path parameter name
        log = partner_event(partner=request.user, event_id=id)
        if log is None:
            raise errors.EventNotFound()
        return Response(EventDetailSerializer(log).data)


class EventResendView(APIView):
    @extend_schema(
        operation_id="resendEvent",
        summary="Deliver an event again (same id)",
        description="A new delivery of the event under the same id (your duplicate check by webhook-id "
        "still holds), with a fresh retry schedule, in order behind its order's earlier pending events. "
        "An event already PENDING is left as it is, with the same answer. No request body is needed.",
        request=None,
        parameters=[EVENT_ID_PATH, REQUEST_ID_HEADER],
        responses={
            202: OpenApiResponse(
                ResendAcceptedSerializer,
                examples=[
                    OpenApiExample(
                        "Queued",
                        value={
                            "success": True,
                            "id": "evt_2f1c9a7e5b0d4c1e9f3a6b8c7d2e1f00",
                            "deliveryStatus": "PENDING",
                        },
                    )
                ],
            ),
            **error_responses("EVENT_NOT_FOUND", *POST_ERRORS),
        },
    )
    def post(self, request, id: str):  # noqa: A002 - the contract's path parameter name
        _json_object_or_nothing(request)
        log = partner_event_resend(partner=request.user, event_id=id)
        return Response({"success": True, "id": log.event_id, "deliveryStatus": log.status}, status=202)


class EventRecoverView(APIView):
    @extend_schema(
        operation_id="recoverEvents",
        summary="Deliver again every FAILED event of a time window",
        description="Every FAILED event of yours created at or after `since` and before `until` (null or "
        "absent: now) is delivered again under its own id, each order's events in the order they were "
        "created. The window is at most 7 days wide, starts no earlier than the failed events' retention "
        "(90 days) and not in the future.",
        request=RecoverRequestSerializer,
        parameters=[REQUEST_ID_HEADER],
        examples=[
            OpenApiExample(
                "The last day of an outage",
                value={"since": "2026-11-22T08:00:00Z", "until": "2026-11-23T08:00:00Z"},
                request_only=True,
            )
        ],
        responses={
            202: OpenApiResponse(
                RecoverAcceptedSerializer,
                examples=[OpenApiExample("Requeued", value={"success": True, "requeued": 12}, response_only=True)],
            ),
            **error_responses(*POST_ERRORS),
        },
    )
    def post(self, request):
        if request.stream is None:  # no body at all: DRF would hand us an empty dict
            raise errors.MalformedJson()
        payload = request.data
        if not isinstance(payload, dict):
            raise errors.MalformedJson()
        body = RecoverRequestSerializer(data=payload)
        body.is_valid(raise_exception=True)
        count = partner_events_recover(
            partner=request.user, since=body.validated_data["since"], until=body.validated_data["until"]
        )
        return Response({"success": True, "requeued": count}, status=202)


class WebhookTestView(APIView):
    @extend_schema(
        operation_id="sendTestWebhook",
        summary="Send a signed PING event to your webhook endpoint now",
        description='Records a `PING` event (`data`: `{"message": "…"}`, no order) and delivers it at '
        "once, signed like every event, to check your endpoint and signature verifier. Its outcome shows in "
        "GET /t2mobile/events/{id}. A PING never disables your endpoint and is tried at most three times. "
        "No request body is needed.",
        request=None,
        parameters=[REQUEST_ID_HEADER],
        responses={
            202: OpenApiResponse(
                PingAcceptedSerializer,
                examples=[
                    OpenApiExample("Sent", value={"success": True, "id": "evt_7d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a"})
                ],
            ),
            **error_responses(*POST_ERRORS),
        },
    )
    def post(self, request):
        _json_object_or_nothing(request)
        log = partner_ping_send(partner=request.user)
        return Response({"success": True, "id": log.event_id}, status=202)
