"""Writes of the order flow: partners and API keys, and order intake with idempotency keys.

``order_accept`` is the one place where an order is created. It runs in one transaction that holds
a PostgreSQL advisory lock on (partner, idempotency key): a second request with the same key while
the first is in flight gets ``409 REQUEST_IN_PROGRESS``; after the first commits, the stored answer
is replayed. The order, its fulfilment row and the idempotency record commit together, and the
provisioning job is queued only after that commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from catalogue.selectors import published_plan, published_product
from orders.models import Fulfilment, IdempotencyRecord, Order
from orders.provisioning import order_enqueue
from partners.models import Partner
from t2mobile_portal import errors
from t2mobile_portal.logging import order_id_var

logger = logging.getLogger(__name__)

# --- Idempotency ----------------------------------------------------------------------------------


def idempotency_key_parse(header: str | None) -> str:
    """The key from the header, bare or as an RFC 8941 quoted string; 1–255 printable ASCII."""
    key = (header or "").strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not 1 <= len(key) <= 255 or any(not (0x20 < ord(ch) < 0x7F) for ch in key):
        raise errors.IdempotencyKeyMissing()
    return key


def request_fingerprint(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _advisory_lock_id(partner_pk: int, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{partner_pk}:{key}".encode()).digest()
    return struct.unpack(">q", digest[:8])[0]


def _try_lock_key(partner: Partner, key: str) -> bool:
    """Transaction-scoped lock on (partner, key); False when another request holds it."""
    if connection.vendor != "postgresql":
        return True  # SQLite (make run) serialises writers; the unique constraint still guards
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_advisory_lock_id(partner.pk, key)])
        return bool(cursor.fetchone()[0])


@dataclass(frozen=True)
class IntakeResult:
    status_code: int
    body: dict
    replayed: bool
    order: Order | None = None


def order_accept(*, partner: Partner, payload: dict, idempotency_key: str) -> IntakeResult:
    """Accept a fulfilment request once per idempotency key; replay the stored answer after that."""
    fingerprint = request_fingerprint(payload)
    now = timezone.now()
    with transaction.atomic():
        if not _try_lock_key(partner, idempotency_key):
            raise errors.RequestInProgress()
        record = IdempotencyRecord.objects.filter(partner=partner, key=idempotency_key).first()
        if record is not None and record.expires_at <= now:
            record.delete()
            record = None
        if record is not None:
            if record.fingerprint != fingerprint:
                raise errors.IdempotencyKeyReused()
            if record.status != IdempotencyRecord.Status.DONE:
                raise errors.RequestInProgress()
            return IntakeResult(record.response_status, record.response_body, replayed=True)

        order = None
        try:
            # Every check runs before the first write, and the order's own insert has a savepoint,
            # so a refusal leaves nothing behind without a savepoint around all of it.
            order = _order_create(partner=partner, payload=payload, idempotency_key=idempotency_key)
            from orders.serializers import order_accepted_body

            status_code, body = 202, order_accepted_body(order)
        except errors.PartnerApiError as exc:
            status_code = exc.status_code
            body = errors.error_body(exc.error_code, exc.message, exc.details)

        IdempotencyRecord.objects.create(
            partner=partner,
            key=idempotency_key,
            fingerprint=fingerprint,
            status=IdempotencyRecord.Status.DONE,
            response_status=status_code,
            response_body=body,
            expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
        )
        if order is not None:
            order_pk = order.pk
            transaction.on_commit(lambda: order_enqueue(order_pk))
    if order is not None:
        logger.info("order accepted", extra={"order_id": order.order_id, "product_id": order.product_id})
    return IntakeResult(status_code, body, replayed=False, order=order)


def _order_create(*, partner: Partner, payload: dict, idempotency_key: str) -> Order:
    from orders.serializers import FulfilmentRequestSerializer

    serializer = FulfilmentRequestSerializer(data=payload)
    if not serializer.is_valid():
        raise errors.ValidationFailed(details=errors._field_errors(serializer.errors))
    data = serializer.validated_data
    order_id_var.set(data["orderId"])

    clashes = Order.objects.filter(
        Q(order_id=data["orderId"]) | Q(idempotency_key=idempotency_key), partner=partner
    ).values_list("order_id", "status")
    for order_id, status in clashes:
        if order_id == data["orderId"]:
            raise errors.DuplicateOrder(details={"orderId": order_id, "status": status})
    if clashes:
        # The key named another order whose idempotency record has expired.
        raise errors.IdempotencyKeyReused()

    plan = published_plan(data["productId"], data["tenure"])
    if plan is None:
        if published_product(data["productId"]) is None:
            raise errors.UnknownProduct(details={"productId": [f"{data['productId']} is not offered."]})
        raise errors.TenureNotOffered(details={"tenure": [f"{data['tenure']} is not offered for this product."]})
    product = plan.product

    renewal_of = None
    if data["type"] == Order.Type.RENEWAL:
        renewal_of = Order.objects.filter(
            partner=partner,
            order_id=data["renewalOf"],
            status=Order.Status.FULFILLED,
            customer_id=data["customerId"],
            product_id=product.item_id,
        ).first()
        if renewal_of is None:
            raise errors.RenewalTargetNotFound()

    try:
        with transaction.atomic():
            order = Order.objects.create(
                partner=partner,
                order_id=data["orderId"],
                type=data["type"],
                renewal_of=renewal_of,
                customer_id=data["customerId"],
                customer_name=data["customerName"],
                customer_email=data["customerEmail"],
                customer_phone=data["customerPhone"],
                product_id=product.item_id,
                tenure=data["tenure"],
                quantity=data["quantity"],
                unit_price=plan.price,
                currency=settings.CURRENCY,
                metadata=data.get("metadata") or {},
                status=Order.Status.PROCESSING,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # The same orderId committed by a concurrent request under another key.
        existing = Order.objects.filter(partner=partner, order_id=data["orderId"]).first()
        if existing is None:
            raise errors.IdempotencyKeyReused() from None
        raise errors.DuplicateOrder(details={"orderId": existing.order_id, "status": existing.status}) from None
    Fulfilment.objects.create(order=order, status=Fulfilment.Status.PENDING, next_attempt_at=timezone.now())
    return order


# --- Housekeeping ---------------------------------------------------------------------------------

IDEMPOTENCY_PURGE_BATCH_SIZE = 1000


def idempotency_records_purge(*, now=None, batch_size: int = IDEMPOTENCY_PURGE_BATCH_SIZE) -> int:
    """Delete idempotency records past ``expires_at``, one batch per transaction; returns the count.

    Safe to run twice at once or to kill at any line: each batch locks its rows with SKIP LOCKED and
    deletes only rows that have expired, so a killed run leaves nothing half done.
    """
    now = now or timezone.now()
    deleted = 0
    while True:
        with transaction.atomic():
            pks = list(
                IdempotencyRecord.objects.filter(expires_at__lt=now)
                .select_for_update(skip_locked=True)
                .order_by("expires_at", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if pks:
                IdempotencyRecord.objects.filter(pk__in=pks).delete()
                deleted += len(pks)
        if len(pks) < batch_size:
            break
    logger.info("idempotency records purged: %d", deleted)
    return deleted
