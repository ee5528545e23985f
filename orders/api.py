"""The partner API under ``/t2mobile/``: thin DRF views that authenticate, validate, call a service
or selector, and render. Errors are raised, never built here (see ``core.errors``).
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

from core import errors
from core.openapi import REQUEST_ID_HEADER, error_responses
from orders.idempotency import Answer, idempotency_key_parse, idempotent_answer
from orders.intake import order_accept
from orders.selectors import partner_order, partner_orders_page
from orders.serializers import (
    AcceptedSerializer,
    FulfilmentRequestSerializer,
    OrderListQuerySerializer,
    OrderListSerializer,
    OrderSerializer,
    order_accepted_body,
)
from partners.models import Partner

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="1–255 printable ASCII characters without spaces or commas (a UUID is recommended), sent "
    "once, bare or as an RFC 8941 quoted string. Scoped to the partner, kept IDEMPOTENCY_KEY_TTL_HOURS "
    "(default 72) hours.",
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
        answer = fulfilment_answer(partner=request.user, payload=payload, idempotency_key=key)
        headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
        if answer.status_code == 202:
            headers["Location"] = answer.body["statusUrl"]
        return Response(answer.body, status=answer.status_code, headers=headers)


def fulfilment_answer(*, partner: Partner, payload: dict, idempotency_key: str) -> Answer:
    """``POST /fulfilment`` without HTTP around it: validate, accept (``orders.intake``) and render
    202, once per idempotency key, the answer (or error envelope) stored and replayed."""

    def accept() -> tuple[int, dict]:
        request = FulfilmentRequestSerializer(data=payload)
        request.is_valid(raise_exception=True)
        order = order_accept(partner=partner, data=request.validated_data, idempotency_key=idempotency_key)
        return 202, order_accepted_body(order)

    return idempotent_answer(partner=partner, key=idempotency_key, payload=payload, operation=accept)


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
        page = partner_orders_page(
            partner=request.user,
            status=params.get("status"),
            customer_id=params.get("customerId"),
            updated_since=params.get("updatedSince"),
            before=_decode_cursor(params["cursor"]) if "cursor" in params else None,
            limit=params["limit"],
        )
        items = OrderSerializer(page.orders, many=True).data
        for item in items:
            item.pop("success", None)
        return Response(
            {
                "success": True,
                "orders": items,
                "nextCursor": _encode_cursor(page.next_before) if page.next_before else None,
            }
        )
