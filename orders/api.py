"""The partner API under ``/t2mobile/``: thin DRF views that authenticate, validate, call a service
or selector, and render. Errors are raised, never built here (see ``t2mobile_portal.errors``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.selectors import partner_order, partner_orders
from orders.serializers import (
    AcceptedSerializer,
    FulfilmentRequestSerializer,
    OrderListQuerySerializer,
    OrderListSerializer,
    OrderSerializer,
)
from orders.services import idempotency_key_parse, order_accept
from t2mobile_portal import errors
from t2mobile_portal.openapi import REQUEST_ID_HEADER, error_responses

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="1–255 printable ASCII characters (a UUID is recommended), bare or as an RFC 8941 "
    "quoted string. Scoped to the partner, kept IDEMPOTENCY_KEY_TTL_HOURS (default 72) hours.",
)


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
            **error_responses(
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
        responses={200: OrderSerializer, **error_responses("ORDER_NOT_FOUND")},
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
        responses={200: OrderListSerializer, **error_responses("VALIDATION_ERROR")},
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
