"""The partner API under ``/t2mobile/``: thin DRF views that authenticate, validate, call a service
or selector, and render. Errors are raised, never built here (see ``t2mobile_portal.errors``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import health as health_checks
from orders.selectors import catalogue_document, partner_order, partner_orders
from orders.serializers import (
    AcceptedSerializer,
    CatalogueSerializer,
    ErrorSerializer,
    FulfilmentRequestSerializer,
    OrderListQuerySerializer,
    OrderListSerializer,
    OrderSerializer,
)
from orders.services import idempotency_key_parse, order_accept
from t2mobile_portal import errors

logger = logging.getLogger(__name__)

# --- OpenAPI documentation of the shared headers and errors ---------------------------------------

REQUEST_ID_HEADER = OpenApiParameter(
    "X-Request-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Your id for this request (≤ 128 chars of [A-Za-z0-9._-]); echoed back, else generated.",
)
IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="1–255 printable ASCII characters (a UUID is recommended), bare or as an RFC 8941 "
    "quoted string. Scoped to the partner, kept IDEMPOTENCY_KEY_TTL_HOURS (default 72) hours.",
)


def _error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error codes, grouped by HTTP status."""
    by_status: dict[int, list[str]] = {}
    for code in ("UNAUTHORIZED", "RATE_LIMITED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", *codes):
        by_status.setdefault(errors.ERROR_CODES[code], []).append(code)
    return {
        status: OpenApiResponse(
            response=ErrorSerializer,
            description="Error envelope; errorCode is one of: " + ", ".join(sorted(set(found))),
            examples=[
                OpenApiExample(
                    code,
                    value={"success": False, "errorCode": code, "message": "…", "requestId": "…"},
                    status_codes=[str(status)],
                )
                for code in sorted(set(found))
            ],
        )
        for status, found in by_status.items()
    }


# --- Catalogue ------------------------------------------------------------------------------------


class ProductsView(APIView):
    @extend_schema(
        operation_id="listProducts",
        summary="The published catalogue",
        parameters=[
            REQUEST_ID_HEADER,
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="An ETag from an earlier answer; 304 when unchanged.",
            ),
        ],
        responses={200: CatalogueSerializer, 304: OpenApiResponse(description="Not modified"), **_error_responses()},
    )
    def get(self, request):
        body, etag = catalogue_document()
        if etag in [tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]:
            return Response(status=304, headers={"ETag": etag})
        return Response({"success": True, "partnerId": settings.PARTNER_ID, **body}, headers={"ETag": etag})


# --- Order intake ---------------------------------------------------------------------------------


class FulfilmentView(APIView):
    @extend_schema(
        operation_id="createFulfilment",
        summary="Place an order (idempotent)",
        request=FulfilmentRequestSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER, REQUEST_ID_HEADER],
        responses={
            202: OpenApiResponse(
                AcceptedSerializer,
                description="Accepted. A replay carries the header `Idempotent-Replayed: true`.",
            ),
            **_error_responses(
                "VALIDATION_ERROR",
                "MALFORMED_JSON",
                "IDEMPOTENCY_KEY_MISSING",
                "UNKNOWN_PRODUCT",
                "TENURE_NOT_OFFERED",
                "RENEWAL_TARGET_NOT_FOUND",
                "DUPLICATE_ORDER",
                "REQUEST_IN_PROGRESS",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                "IDEMPOTENCY_KEY_REUSED",
                "METHOD_NOT_ALLOWED",
            ),
        },
    )
    def post(self, request):
        if request.stream is None:  # no body at all: DRF would hand us an empty dict
            raise errors.MalformedJson()
        payload = request.data
        if not isinstance(payload, dict):
            raise errors.MalformedJson()
        key = idempotency_key_parse(request.META.get("HTTP_IDEMPOTENCY_KEY"))
        result = order_accept(partner=request.user, payload=payload, idempotency_key=key)
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        if result.status_code == 202:
            headers["Location"] = result.body["statusUrl"]
        return Response(result.body, status=result.status_code, headers=headers)


# --- Orders ---------------------------------------------------------------------------------------


class OrderDetailView(APIView):
    @extend_schema(
        operation_id="getOrder",
        summary="One order and its fulfilment",
        parameters=[REQUEST_ID_HEADER],
        responses={200: OrderSerializer, **_error_responses("ORDER_NOT_FOUND")},
    )
    def get(self, request, orderId: str):  # noqa: N803 - the contract's path parameter name
        order = partner_order(request.user, orderId)
        if order is None:
            raise errors.OrderNotFound()
        return Response(OrderSerializer(order).data)


def _encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": pk}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        before = json.loads(base64.urlsafe_b64decode(padded.encode()))["before"]
        if not isinstance(before, int) or isinstance(before, bool):
            raise ValueError
        return before
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise errors.ValidationFailed(details={"cursor": ["This cursor is not valid."]}) from None


class OrderListView(APIView):
    @extend_schema(
        operation_id="listOrders",
        summary="This partner's orders, newest first (cursor pagination)",
        parameters=[REQUEST_ID_HEADER, OrderListQuerySerializer],
        responses={200: OrderListSerializer, **_error_responses("VALIDATION_ERROR")},
    )
    def get(self, request):
        query = OrderListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        orders = partner_orders(request.user).order_by("-pk")
        if "status" in params:
            orders = orders.filter(status=params["status"])
        if "customerId" in params:
            orders = orders.filter(customer_id=params["customerId"])
        if "updatedSince" in params:
            orders = orders.filter(updated_at__gte=params["updatedSince"])
        if "cursor" in params:
            orders = orders.filter(pk__lt=_decode_cursor(params["cursor"]))
        page = list(orders[: params["limit"] + 1])
        has_more = len(page) > params["limit"]
        page = page[: params["limit"]]
        items = OrderSerializer(page, many=True).data
        for item in items:
            item.pop("success", None)
        return Response(
            {
                "success": True,
                "orders": items,
                "nextCursor": _encode_cursor(page[-1].pk) if has_more else None,
            }
        )


# --- Health ---------------------------------------------------------------------------------------


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "down"])
    checks = serializers.DictField(required=False)


class HealthLiveView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(operation_id="healthLive", summary="Liveness (no auth)", auth=[], responses={200: HealthSerializer})
    def get(self, request):
        return Response({"status": "ok"})


class HealthView(APIView):
    @extend_schema(
        operation_id="health",
        summary="Readiness: database, broker, cache, queue depth, stuck orders, webhooks waiting",
        responses={200: HealthSerializer, 503: HealthSerializer, **_error_responses()},
    )
    def get(self, request):
        report = health_checks.health_report()
        return Response(report, status=503 if report["status"] == "down" else 200)

    def handle_exception(self, exc):
        # API keys are checked in the database, so while it is unreachable no caller can be
        # authenticated: answer the contract's "down" rather than the error envelope. It says no more
        # than the 503 every other endpoint gives then.
        if isinstance(exc, (OperationalError, InterfaceError)):
            logger.warning("health: database unreachable")
            return Response({"status": "down", "checks": {"database": "down"}}, status=503)
        return super().handle_exception(exc)


def api_not_found(request, *args, **kwargs):
    """Any other path under /t2mobile/: the NOT_FOUND envelope (no auth needed to learn that)."""
    return errors.error_response(errors.NotFound())


def json_not_found(request, exception=None):
    if request.path.startswith("/t2mobile/"):
        return errors.error_response(errors.NotFound())
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request):
    if request.path.startswith("/t2mobile/"):
        return errors.error_response(errors.InternalError())
    from django.views.defaults import server_error

    return server_error(request)
