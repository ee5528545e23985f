"""Zoho's OAuth refresh-token flow and what every worker shares about it: the access token, the
credentials' back-off, and the marks health reads.

``ZohoOAuth`` is the half of ``ZohoClient`` that holds one set of credentials, the
``requests.Session`` every call of the client goes through, and the access token. The access token
lives in the shared cache until a minute before it expires. One process at a time refreshes it (a
lock in the limits cache, ``limits.add``); the others wait for its result. Zoho allows only ten access tokens per
refresh token in ten minutes and then blocks the rest of the window, so when Zoho refuses our
credentials (a failed refresh, or a 401 that survives a fresh token) every worker waits out one
shared back-off before the next token request: 2 minutes, doubling to 10, and 10 minutes after an
``Access Denied`` from the token endpoint (``auth_backoff_*``). Health shows since when
(``auth_failing_since``), and whether the token answer's ``api_domain`` names another data centre
than ZOHO_API_BASE (``DATA_CENTRE_MISMATCH_KEY``).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from urllib.parse import urlsplit

import requests
from django.core.cache import cache

from core.instruments import zoho_call_count
from core.redis_roles import limits
from integrations.zoho.errors import (
    ZohoAuthError,
    ZohoAuthWaitError,
    ZohoError,
    error_from_exception,
    token_error_from_response,
)

logger = logging.getLogger(__name__)

#: Every Zoho call's timeouts (seconds), the token request's and the API's (``client.py``).
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
TOKEN_LOCK_SECONDS = 30
TOKEN_WAIT_SECONDS = 35
TOKEN_EARLY_EXPIRY = 60
#: The shared back-off after Zoho refused our credentials: the first wait, doubled up to the cap.
AUTH_BACKOFF_FIRST_SECONDS = 120
AUTH_BACKOFF_MAX_SECONDS = 600
#: After ``Access Denied`` (too many token requests): Zoho blocks the rest of its 10-minute window.
AUTH_BACKOFF_ACCESS_DENIED_SECONDS = 600
# Set while Zoho refuses our credentials (after one refresh); read by GET /t2mobile/health.
AUTH_FAILING_KEY = "zoho:auth_failing"
AUTH_FAILING_SINCE_KEY = "zoho:auth_failing_since"
AUTH_FAILING_SECONDS = 15 * 60
AUTH_BACKOFF_KEY = "zoho:auth_backoff"  # {"until": epoch, "step": seconds, "reason": …}
# Set while the token answer's ``api_domain`` names another data centre than ZOHO_API_BASE; read by
# GET /t2mobile/health. Refreshed with every token (about hourly), so it clears itself once fixed.
DATA_CENTRE_MISMATCH_KEY = "zoho:data_centre_mismatch"
DATA_CENTRE_MISMATCH_SECONDS = 2 * 3600
_data_centre_logged = False


def data_centre_check(*, api_domain: str, api_base: str) -> bool:
    """True when the token answer's ``api_domain`` is the host of ``api_base`` (or names none).

    A mismatch means the credentials belong to another data centre than ZOHO_API_BASE: it is logged
    once per process and marked for health, which says "mismatch" without naming either host.
    """
    global _data_centre_logged
    if not api_domain:
        return True
    domain, base = urlsplit(api_domain), urlsplit(api_base)

    def origin(url) -> tuple:
        default_port = {"http": 80, "https": 443}.get(url.scheme.lower())
        return (url.scheme.lower(), (url.hostname or "").lower(), url.port or default_port)

    matches = origin(domain) == origin(base)
    try:  # health's mark only: a cache that is down must not fail the token that just worked
        if matches:
            limits.delete(DATA_CENTRE_MISMATCH_KEY)
        else:
            limits.set(DATA_CENTRE_MISMATCH_KEY, 1, timeout=DATA_CENTRE_MISMATCH_SECONDS)
    except Exception:
        logger.debug("zoho data centre mark not written")
    if matches:
        return True
    if not _data_centre_logged:
        _data_centre_logged = True
        logger.error(
            "zoho data centre mismatch: the token answer's api_domain is %s but ZOHO_API_BASE points at %s",
            f"{domain.scheme}://{domain.netloc}",
            f"{base.scheme}://{base.netloc}",
        )
    return False


def auth_failing_mark(error: ZohoError) -> None:
    """Zoho refused our credentials: health says so until a token refresh works (or 15 minutes)."""
    limits.set(AUTH_FAILING_KEY, error.message[:200], timeout=AUTH_FAILING_SECONDS)
    limits.add(AUTH_FAILING_SINCE_KEY, time.time(), timeout=None)


def auth_backoff_record(error: ZohoError) -> float:
    """Every worker waits this many seconds before the next token request (shared in the cache):
    2 minutes after the first refusal, doubling to 10; 10 minutes after ``Access Denied``."""
    previous = limits.get(AUTH_BACKOFF_KEY) or {}
    if "access denied" in error.message.lower():
        step = AUTH_BACKOFF_ACCESS_DENIED_SECONDS
    elif previous:
        step = min(AUTH_BACKOFF_MAX_SECONDS, int(previous.get("step", 0)) * 2 or AUTH_BACKOFF_FIRST_SECONDS)
    else:
        step = AUTH_BACKOFF_FIRST_SECONDS
    # Remembered past its wait, so that the next refusal doubles it; a working token clears it.
    limits.set(
        AUTH_BACKOFF_KEY,
        {"until": time.time() + step, "step": step, "reason": error.message[:200]},
        timeout=step + AUTH_BACKOFF_MAX_SECONDS * 2,
    )
    auth_failing_mark(error)
    logger.warning("zoho refuses our credentials; token requests wait %d s: %s", step, error.describe())
    return step


def auth_backoff_left() -> tuple[float, str] | None:
    """(seconds left, reason) while the credentials' back-off is in force."""
    state = limits.get(AUTH_BACKOFF_KEY)
    if not state:
        return None
    left = float(state.get("until", 0)) - time.time()
    return (left, str(state.get("reason", ""))) if left > 0 else None


def auth_failing_since() -> float | None:
    """Epoch seconds since Zoho has refused our credentials, while it does."""
    if limits.get(AUTH_FAILING_KEY) is None:
        return None
    return limits.get(AUTH_FAILING_SINCE_KEY)


def _auth_recovered() -> None:
    limits.delete_many([AUTH_FAILING_KEY, AUTH_FAILING_SINCE_KEY, AUTH_BACKOFF_KEY])


class ZohoOAuth:
    """One set of Zoho credentials, the session every call goes through, and its access token."""

    def __init__(self, *, accounts_url: str, api_base: str, client_id: str, client_secret: str, refresh_token: str):
        self.accounts_url = accounts_url.rstrip("/")
        self.api_base = api_base.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        scope = hashlib.sha256(f"{self.accounts_url}|{client_id}|{refresh_token}".encode()).hexdigest()[:16]
        self._token_key = f"zoho:access_token:{scope}"
        self._lock_key = f"zoho:access_token_lock:{scope}"

    def access_token(self) -> str:
        """The cached token, or a fresh one; only one process refreshes at a time."""
        token = cache.get(self._token_key)
        if token:
            return token
        deadline = time.monotonic() + TOKEN_WAIT_SECONDS
        owner = uuid.uuid4().hex
        while True:
            backoff = auth_backoff_left()
            if backoff is not None:
                left, reason = backoff
                raise ZohoAuthWaitError(f"Zoho refused our credentials ({reason}); waiting", retry_after=left)
            if limits.add(self._lock_key, owner, timeout=TOKEN_LOCK_SECONDS):
                try:
                    token = cache.get(self._token_key)  # another process may have finished just now
                    if token:
                        return token
                    return self._refresh_token()
                finally:
                    if limits.get(self._lock_key) == owner:
                        limits.delete(self._lock_key)
            time.sleep(0.05)
            token = cache.get(self._token_key)
            if token:
                return token
            if time.monotonic() > deadline:
                raise ZohoAuthError("timed out waiting for another process to refresh the Zoho token")

    def _refresh_token(self) -> str:
        try:
            response = self.session.post(
                f"{self.accounts_url}/oauth/v2/token",
                data={
                    "refresh_token": self.refresh_token,
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "grant_type": "refresh_token",
                },
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            zoho_call_count(endpoint="oauth_token", timed_out=isinstance(exc, requests.Timeout))
            raise error_from_exception(exc) from exc
        zoho_call_count(endpoint="oauth_token", status_code=response.status_code)
        error = token_error_from_response(response)
        if error is not None:
            if isinstance(error, ZohoAuthError):
                step = auth_backoff_record(error)
                raise ZohoAuthWaitError(error.message, http_status=error.http_status, retry_after=step)
            logger.warning("zoho token refresh failed: %s", error.describe())
            raise error
        body = response.json()
        token = str(body["access_token"])
        try:
            expires_in = int(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600
        cache.set(self._token_key, token, timeout=max(30, expires_in - TOKEN_EARLY_EXPIRY))
        _auth_recovered()
        data_centre_check(api_domain=str(body.get("api_domain") or ""), api_base=self.api_base)
        logger.info("zoho access token refreshed")
        return token

    def _drop_token(self, token: str) -> None:
        # Only drop the token that failed: another process may already have stored a fresh one.
        if cache.get(self._token_key) == token:
            cache.delete(self._token_key)
