"""Partner-facing shapes: the fulfilment request's validation, and the order and catalogue as the
partner sees them (camelCase, ISO 8601 UTC with ``Z``, money as decimal strings).

``order_representation`` is the single definition of "the order as GET /t2mobile/orders/{id} shows
it"; webhook events reuse it.
"""

from __future__ import annotations

import re
import unicodedata

from rest_framework import serializers

from catalogue.models import Tenure
from core.times import iso_utc
from orders.models import Order

ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
E164_RE = re.compile(r"^\+[1-9][0-9]{7,14}$")
METADATA_MAX_KEYS = 20
METADATA_MAX_CHARS = 500


CONTROL_REFUSED = "Control and format characters (newlines, tabs, bidirectional marks, zero-width) are not allowed."


def _has_control(value: str) -> bool:
    """Unicode categories Cc (controls: newline, tab, NUL) and Cf (format: U+202E, U+200D, …)."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value)


def normalise_phone(raw: str) -> str:
    """E.164, with Nigerian local forms (``08031234567``, ``2348031234567``) made ``+234…``."""
    phone = re.sub(r"[\s().-]", "", raw or "")
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if re.fullmatch(r"0[7-9][01][0-9]{8}", phone):
        phone = "+234" + phone[1:]
    elif re.fullmatch(r"234[0-9]{10}", phone):
        phone = "+" + phone
    if not E164_RE.match(phone):
        raise serializers.ValidationError(
            "Enter a phone number in E.164 form (+ and 8 to 15 digits), or a Nigerian local number."
        )
    return phone


class FulfilmentRequestSerializer(serializers.Serializer):
    """POST /t2mobile/fulfilment body; unknown fields are ignored."""

    orderId = serializers.CharField(max_length=64, trim_whitespace=False)
    productId = serializers.CharField(max_length=64)
    tenure = serializers.ChoiceField(choices=Tenure.values)
    quantity = serializers.IntegerField(min_value=1, max_value=1000, required=False, default=1)
    customerId = serializers.CharField(max_length=64)
    customerName = serializers.CharField(max_length=200)
    customerEmail = serializers.EmailField(max_length=254)
    customerPhone = serializers.CharField(max_length=32)
    type = serializers.ChoiceField(choices=Order.Type.values, required=False, default=Order.Type.NEW)
    renewalOf = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    metadata = serializers.DictField(
        child=serializers.CharField(max_length=METADATA_MAX_CHARS, allow_blank=True, trim_whitespace=False),
        required=False,
        allow_null=True,
        default=dict,
    )

    def to_internal_value(self, data):
        # Strict integers: "5", 1.5 and true are not a quantity.
        quantity = data.get("quantity") if isinstance(data, dict) else None
        if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
            raise serializers.ValidationError({"quantity": ["A whole number from 1 to 1000 is required."]})
        for name in (
            "orderId",
            "productId",
            "customerId",
            "customerName",
            "customerEmail",
            "customerPhone",
            "renewalOf",
            "tenure",
            "type",
        ):
            value = data.get(name) if isinstance(data, dict) else None
            if value is not None and not isinstance(value, str):
                raise serializers.ValidationError({name: ["A string is required."]})
            if value is not None and _has_control(value):
                raise serializers.ValidationError({name: [CONTROL_REFUSED]})
        metadata = data.get("metadata") if isinstance(data, dict) else None
        if isinstance(metadata, dict) and any(not isinstance(v, str) for v in metadata.values()):
            raise serializers.ValidationError({"metadata": ["Values must be strings."]})
        if isinstance(metadata, dict) and any(_has_control(str(k)) or _has_control(v) for k, v in metadata.items()):
            raise serializers.ValidationError({"metadata": [CONTROL_REFUSED]})
        return super().to_internal_value(data)

    def validate_orderId(self, value: str) -> str:
        if not ORDER_ID_RE.match(value):
            raise serializers.ValidationError("Use 1 to 64 characters of A-Z, a-z, 0-9, _ and -.")
        return value

    def validate_customerName(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate_customerEmail(self, value: str) -> str:
        return value.lower()

    def validate_customerPhone(self, value: str) -> str:
        return normalise_phone(value)

    def validate_metadata(self, value):
        value = value or {}
        if len(value) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"At most {METADATA_MAX_KEYS} keys are allowed.")
        if any(len(key) > METADATA_MAX_CHARS for key in value):
            raise serializers.ValidationError(f"Keys are at most {METADATA_MAX_CHARS} characters.")
        return value

    def validate(self, attrs):
        if attrs["type"] == Order.Type.RENEWAL and not attrs.get("renewalOf"):
            raise serializers.ValidationError({"renewalOf": ["Required when type is RENEWAL."]})
        if attrs["type"] == Order.Type.NEW and attrs.get("renewalOf"):
            raise serializers.ValidationError({"renewalOf": ["Only allowed when type is RENEWAL."]})
        return attrs


class OrderSerializer(serializers.Serializer):
    """The order as GET /t2mobile/orders/{orderId} shows it."""

    success = serializers.SerializerMethodField()
    orderId = serializers.CharField(source="order_id")
    status = serializers.CharField()
    type = serializers.CharField()
    productId = serializers.CharField(source="product_id")
    tenure = serializers.CharField()
    quantity = serializers.IntegerField()
    customerId = serializers.CharField(source="customer_id")
    activationReference = serializers.SerializerMethodField()
    salesOrderId = serializers.SerializerMethodField()
    startsAt = serializers.SerializerMethodField()
    expiresAt = serializers.SerializerMethodField()
    failureReason = serializers.SerializerMethodField()
    renewalOf = serializers.SerializerMethodField()
    metadata = serializers.DictField(child=serializers.CharField())
    createdAt = serializers.SerializerMethodField()
    updatedAt = serializers.SerializerMethodField()

    def get_success(self, order) -> bool:
        return True

    def _fulfilment(self, order):
        return getattr(order, "fulfilment", None)

    def get_activationReference(self, order) -> str | None:
        return order.activation_reference or None

    def get_salesOrderId(self, order) -> str | None:
        return order.zoho_sales_order_id or None

    def get_startsAt(self, order) -> str | None:
        fulfilment = self._fulfilment(order)
        return iso_utc(fulfilment.starts_at) if fulfilment else None

    def get_expiresAt(self, order) -> str | None:
        fulfilment = self._fulfilment(order)
        return iso_utc(fulfilment.expires_at) if fulfilment else None

    def get_failureReason(self, order) -> str | None:
        return order.failure_reason or None if order.status == Order.Status.FAILED else None

    def get_renewalOf(self, order) -> str | None:
        return order.renewal_of.order_id if order.renewal_of_id else None

    def get_createdAt(self, order) -> str | None:
        return iso_utc(order.created_at)

    def get_updatedAt(self, order) -> str | None:
        return iso_utc(order.updated_at)


def order_representation(order: Order) -> dict:
    return dict(OrderSerializer(order).data)


def order_accepted_body(order: Order) -> dict:
    return {
        "success": True,
        "orderId": order.order_id,
        "status": order.status,
        "activationReference": order.activation_reference or None,
        "statusUrl": f"/t2mobile/orders/{order.order_id}",
    }


class OrderListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Order.Status.values, required=False)
    customerId = serializers.CharField(max_length=64, required=False)
    updatedSince = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, required=False, default=50)
    cursor = serializers.CharField(required=False, max_length=128)  # ours are about 20 characters


# --- Schema-only shapes (drf-spectacular) ---------------------------------------------------------


class AcceptedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    orderId = serializers.CharField()
    status = serializers.CharField()
    activationReference = serializers.CharField(allow_null=True)
    statusUrl = serializers.CharField()


class OrderListSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    orders = OrderSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True)
