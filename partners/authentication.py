"""Bearer API-key authentication for the partner API, with a limit on failed attempts per address.

Keys are looked up by their first characters and compared by SHA-256 hash in constant time
(``hmac.compare_digest``), always in the database (never in Redis, so a Redis outage does not stop
authentication). A request with a valid key is always served: only failures are counted, and an
address over ``AUTH_FAILURE_RATE_LIMIT`` failures gets 429 instead of 401 for its further wrong
keys, so keys cannot be guessed at speed, while one misconfigured client behind the partner's NAT
cannot lock out the good ones. Without an ``Authorization`` header this returns None, so the next
authentication class (the admin session, for the docs pages) can run.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from core.net import client_address
from partners.models import ApiKey, Partner
from partners.services import api_key_hash, api_key_prefix
from partners.throttling import FixedWindowCounter, parse_rate

logger = logging.getLogger(__name__)

LAST_USED_WRITE_EVERY_SECONDS = 60


class PartnerApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # the permission answers 401; a session may authenticate the docs pages
        partner = self._partner_for(header)
        if partner is not None:
            return partner, None
        limit, window = parse_rate(settings.AUTH_FAILURE_RATE_LIMIT)
        failures = FixedWindowCounter(f"authfail:{client_address(request)}", window)
        if failures.hit() > limit:
            raise exceptions.Throttled(wait=failures.seconds_left())
        raise exceptions.AuthenticationFailed()

    def _partner_for(self, header: str) -> Partner | None:
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key or len(key) > 256:
            return None
        digest = api_key_hash(key)
        candidates = ApiKey.objects.select_related("partner").filter(
            prefix=api_key_prefix(key), revoked_at__isnull=True
        )
        match = None
        for candidate in candidates:
            if hmac.compare_digest(candidate.hash, digest):
                match = candidate
        if match is None:
            return None
        now = timezone.now()
        if match.last_used_at is None or (now - match.last_used_at).total_seconds() > LAST_USED_WRITE_EVERY_SECONDS:
            ApiKey.objects.filter(pk=match.pk).update(last_used_at=now)
        return match.partner

    def authenticate_header(self, request) -> str:
        return self.keyword


class IsPartner(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Partner)


class IsPartnerOrStaff(permissions.BasePermission):
    """The OpenAPI schema and docs: a partner key, or a staff member logged into the admin."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return isinstance(user, Partner) or bool(getattr(user, "is_staff", False))
