"""Writes about partners: API keys, the partner of the environment, webhook signing secrets.

``partner_sync_from_settings`` runs after every ``migrate`` (``partners/apps.py``). A secret
rotation, from the environment or from the admin, goes through ``_webhook_secret_add``: the new
secret signs at once and the ones before it keep signing beside it for the grace period. Secrets are
stored in plain (each delivery is signed with them), so ``webhook_secrets_purge`` deletes those whose
grace ended over ``WEBHOOK_SECRET_KEPT_AFTER_GRACE`` ago, never a partner's newest one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from partners.models import ApiKey, Partner, WebhookSecret

logger = logging.getLogger(__name__)

DEFAULT_ROTATION_GRACE = timedelta(hours=24)
WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_SECRET_BYTES = 32
API_KEY_PREFIX_CHARS = 12
GENERATED_KEY_PREFIX = "t2m_live_"
# How long a secret stays stored after its grace period: a day to see, in its row, which secret a
# partner still verified with when its deliveries started failing after a rotation.
WEBHOOK_SECRET_KEPT_AFTER_GRACE = timedelta(days=1)


def api_key_hash(key: str) -> str:
    # Keys are 256-bit random strings (or long operator-chosen secrets), so a fast hash is enough.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_key_prefix(key: str) -> str:
    return key[:API_KEY_PREFIX_CHARS]


def api_key_store(*, partner: Partner, key: str, name: str = "") -> ApiKey:
    api_key, _ = ApiKey.objects.get_or_create(
        hash=api_key_hash(key),
        defaults={"partner": partner, "prefix": api_key_prefix(key), "name": name},
    )
    return api_key


def api_key_create(*, partner: Partner, name: str = "") -> tuple[ApiKey, str]:
    """A new random key; the plain key is returned once and never stored."""
    plain = GENERATED_KEY_PREFIX + secrets.token_urlsafe(32)
    return api_key_store(partner=partner, key=plain, name=name), plain


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


ENV_KEY_NAME = "from T2MOBILE_API_KEYS"


@transaction.atomic
def partner_sync_from_settings() -> Partner:
    """Create or update the partner of ``PARTNER_ID`` from the environment (run by every ``migrate``).

    - ``T2MOBILE_API_KEYS`` is the list of the env-managed keys: each is hashed in, and an env-managed
      key no longer listed is revoked (a key rotation is: add the new key, deploy, let T2Mobile switch,
      remove the old one, deploy). An empty list changes nothing, so a missing variable never locks
      T2Mobile out. Keys made with ``create_api_key`` or the admin are never touched.
    - A new ``T2MOBILE_WEBHOOK_SECRET`` starts signing at once; the secrets before it keep signing
      beside it for the rotation grace period (24 h), then stop.
    """
    partner, _ = Partner.objects.get_or_create(
        partner_id=settings.PARTNER_ID, defaults={"name": settings.PARTNER_NAME, "prefix": settings.PARTNER_PREFIX}
    )
    if settings.T2MOBILE_WEBHOOK_URL and partner.webhook_url != settings.T2MOBILE_WEBHOOK_URL:
        partner.webhook_url = settings.T2MOBILE_WEBHOOK_URL
        partner.save(update_fields=["webhook_url", "updated_at"])
    secret = settings.T2MOBILE_WEBHOOK_SECRET
    if secret and not WebhookSecret.objects.filter(partner=partner, secret=secret).exists():
        _webhook_secret_add(partner=partner, secret=secret, grace=DEFAULT_ROTATION_GRACE)
    if settings.T2MOBILE_API_KEYS:
        listed = [api_key_store(partner=partner, key=key, name=ENV_KEY_NAME).pk for key in settings.T2MOBILE_API_KEYS]
        dropped = ApiKey.objects.filter(partner=partner, name=ENV_KEY_NAME, revoked_at__isnull=True).exclude(
            pk__in=listed
        )
        if revoked := dropped.update(revoked_at=timezone.now()):
            logger.info("API keys no longer in T2MOBILE_API_KEYS revoked", extra={"count": revoked})
    return partner


def secret_generate() -> str:
    """A new ``whsec_<base64 of 32 random bytes>`` secret."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode("ascii")


def _webhook_secret_add(*, partner: Partner, secret: str, grace: timedelta) -> datetime:
    """Start signing with ``secret``; the current secrets stop at the end of ``grace`` (returned).
    Runs inside the caller's transaction."""
    grace_end = timezone.now() + grace
    WebhookSecret.objects.filter(partner=partner).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=grace_end)
    ).update(expires_at=grace_end)
    WebhookSecret.objects.create(partner=partner, secret=secret)
    return grace_end


def webhook_secret_rotate(*, partner: Partner, grace: timedelta = DEFAULT_ROTATION_GRACE) -> str:
    """Add a new ``whsec_`` secret and return it (it is shown once); the current secrets keep
    signing beside it until ``grace`` has passed, so the receiver can switch at any moment."""
    secret = secret_generate()
    with transaction.atomic():
        grace_end = _webhook_secret_add(partner=partner, secret=secret, grace=grace)
    logger.info("webhook secret rotated", extra={"partner_id": partner.partner_id, "grace_ends": grace_end.isoformat()})
    return secret


def webhook_secrets_purge(*, now: datetime) -> int:
    """Delete the signing secrets whose grace period ended more than ``WEBHOOK_SECRET_KEPT_AFTER_GRACE``
    before ``now``; returns how many. A partner's newest secret (the one that signs first) is
    never deleted, even past its end, so no partner is left without a secret to sign with or to
    restore by clearing its end.

    One DELETE: safe to run twice at once (the second deletes nothing) and to kill at any point. A
    rotation at the same moment only sets ends in the future, which this never deletes.
    """
    cutoff = now - WEBHOOK_SECRET_KEPT_AFTER_GRACE
    newest = WebhookSecret.objects.filter(partner=OuterRef("partner")).order_by("-created_at", "-pk").values("pk")[:1]
    deleted, _ = WebhookSecret.objects.filter(expires_at__lt=cutoff).exclude(pk=Subquery(newest)).delete()
    logger.info("webhook secrets purged", extra={"count": deleted, "ended_before": cutoff.isoformat()})
    return deleted
