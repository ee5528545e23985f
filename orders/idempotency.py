"""Idempotency keys of the partner API: one answer per (partner, key), stored and replayed.

``idempotent_answer`` wraps an operation (intake) in one transaction that holds a PostgreSQL advisory
lock on (partner, key). A second request with the same key while the first is in flight gets
``409 REQUEST_IN_PROGRESS``; after the first commits, its stored answer (status and body, an error
envelope included) is replayed; the same key with another body is ``422 IDEMPOTENCY_KEY_REUSED``.
The operation's rows and the record (the last write, ``orders.sql``) commit together. Records
expire after ``IDEMPOTENCY_KEY_TTL_HOURS`` and are purged nightly.

The fingerprint that tells "the same body" from "another body" is an HMAC of the canonical request
under a key derived from ``SECRET_KEY`` (``salted_hmac`` with its own purpose string). A plain hash
of a body that holds a customer's email and phone could be matched against guesses by anyone who
sees the record (a masked phone leaves about ten thousand candidates), so only the server can
compute it. A record matches a replay whose fingerprint equals it under ``SECRET_KEY`` or one of
``SECRET_KEY_FALLBACKS`` (a key rotation breaks no retry), or, for records written by a release
that stored the unkeyed SHA-256, that hash (``LEGACY_UNKEYED_FINGERPRINTS``): such records expire
within ``IDEMPOTENCY_KEY_TTL_HOURS`` of the deploy, and until then a partner's retry is replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework.exceptions import ValidationError

from core import errors
from orders.models import IdempotencyRecord
from orders.sql import idempotency_record_find, row_insert
from partners.models import Partner

logger = logging.getLogger(__name__)

IDEMPOTENCY_PURGE_BATCH_SIZE = 1000
FINGERPRINT_PURPOSE = "orders.idempotency.request_fingerprint"
# Whether a record holding the unkeyed sha256 of the request still matches (module docstring); it
# can be turned off once no such record is left (IDEMPOTENCY_KEY_TTL_HOURS after the deploy).
LEGACY_UNKEYED_FINGERPRINTS = True


@dataclass(frozen=True)
class Answer:
    """What the partner is answered: the operation's own answer, or the stored one (``replayed``)."""

    status_code: int
    body: dict
    replayed: bool


def idempotency_key_parse(header: str | None) -> str:
    """The key from the header, bare or as an RFC 8941 quoted string; 1–255 printable ASCII.

    A comma is refused: a request carrying two ``Idempotency-Key`` headers reaches us joined into one
    (``a,b``, RFC 9110 5.3), and which of the two the partner meant cannot be told.
    """
    key = (header or "").strip()
    if "," in key:
        raise errors.IdempotencyKeyMissing(
            "The Idempotency-Key header must be sent once, without a comma: 1 to 255 printable ASCII characters."
        )
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not 1 <= len(key) <= 255 or any(not (0x20 < ord(ch) < 0x7F) for ch in key):
        raise errors.IdempotencyKeyMissing()
    return key


def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def request_fingerprint(payload: dict, *, secret: str | None = None) -> str:
    """HMAC-SHA256 (64 hex digits) of the canonical request, keyed from ``secret`` (``SECRET_KEY``)."""
    return salted_hmac(FINGERPRINT_PURPOSE, _canonical(payload), secret=secret, algorithm="sha256").hexdigest()


def fingerprint_matches(stored: str, payload: dict) -> bool:
    """Whether ``stored`` is the fingerprint of ``payload`` (see the module docstring)."""
    candidates = [
        request_fingerprint(payload, secret=secret) for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    ]
    if LEGACY_UNKEYED_FINGERPRINTS:
        candidates.append(hashlib.sha256(_canonical(payload)).hexdigest())
    # Every candidate is compared, in constant time, so the answer's timing says nothing of which matched.
    return any([hmac.compare_digest(stored.encode(), candidate.encode()) for candidate in candidates])


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


def idempotent_answer(
    *, partner: Partner, key: str, payload: dict, operation: Callable[[], tuple[int, dict]]
) -> Answer:
    """Run ``operation`` once per (partner, key) and store its answer; replay that answer after.

    ``operation`` returns ``(status_code, body)`` or raises a contract error (``PartnerApiError`` or
    DRF's ``ValidationError``), whose envelope is stored and replayed like any answer. It runs
    inside this transaction and must leave nothing behind when it raises (its inserts take their
    own savepoint).
    """
    fingerprint = request_fingerprint(payload)
    now = timezone.now()
    with transaction.atomic():
        if not _try_lock_key(partner, key):
            raise errors.RequestInProgress()
        record = idempotency_record_find(partner_pk=partner.pk, key=key)
        if record is not None and record.expires_at <= now:
            record.delete()
            record = None
        if record is not None:
            if not fingerprint_matches(record.fingerprint, payload):
                raise errors.IdempotencyKeyReused()
            if record.status != IdempotencyRecord.Status.DONE:
                raise errors.RequestInProgress()
            return Answer(record.response_status, record.response_body, replayed=True)
        try:
            status_code, body = operation()
        except (errors.PartnerApiError, ValidationError) as exc:
            error, _ = errors.as_partner_error(exc)
            status_code, body = error.status_code, errors.error_body(error.error_code, error.message, error.details)
        record = IdempotencyRecord(
            partner=partner,
            key=key,
            fingerprint=fingerprint,
            status=IdempotencyRecord.Status.DONE,
            response_status=status_code,
            response_body=body,
            expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
        )
        row_insert(record)  # the transaction's last write
    return Answer(status_code, body, replayed=False)


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
