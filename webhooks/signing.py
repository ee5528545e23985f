"""Signature headers of a delivery: Standard Webhooks v1, or the per-partner ``hmac-sha256-hex`` scheme.

Standard Webhooks signs ``"{webhook-id}.{webhook-timestamp}.{body}"`` with HMAC-SHA256 under the
base64-decoded part of each ``whsec_`` secret; during a rotation every active secret signs, and the
signatures are joined by single spaces. The ``hmac-sha256-hex`` scheme signs the raw body with the
secret string itself (as UTF-8 bytes) and sends ``X-Signature: sha256=<hex>`` plus ``X-Timestamp``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from partners.services import WEBHOOK_SECRET_PREFIX as SECRET_PREFIX

SCHEME_STANDARD = "standard-webhooks-v1"
SCHEME_HMAC_HEX = "hmac-sha256-hex"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: its base64-decoded part (unpadded base64 accepted)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def standard_signature(*, secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64>`` per secret, space-separated."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    signatures = []
    for secret in secrets:
        digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode("ascii"))
    return " ".join(signatures)


def hmac_hex_signature(*, secrets: Sequence[str], body: str) -> str:
    """The ``X-Signature`` header value: ``sha256=<hex>`` per secret, space-separated."""
    raw = body.encode("utf-8")
    return " ".join("sha256=" + hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest() for secret in secrets)


def signature_headers(*, scheme: str, secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> dict:
    """Every header of one attempt except the transport ones (content type, user agent)."""
    if scheme == SCHEME_HMAC_HEX:
        return {
            "webhook-id": msg_id,
            "X-Timestamp": str(timestamp),
            "X-Signature": hmac_hex_signature(secrets=secrets, body=body),
        }
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secrets=secrets, msg_id=msg_id, timestamp=timestamp, body=body),
    }
