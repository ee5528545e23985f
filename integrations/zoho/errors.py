"""Zoho's error model, mapped to ours in one place.

Every answer from Zoho carries ``code`` (0 = success) and ``message``. We sort each failure into one
of two kinds, and the rest of the code only ever sees these kinds:

- ``ZohoTransientError``: retry later with backoff (connection errors, timeouts, HTTP 5xx, HTTP 429,
  Zoho's "too many requests" codes, token refresh failures). ``ZohoAuthError`` is the transient kind
  for an authentication outage: it never fails an order, however long it lasts.
- ``ZohoPermanentError``: the request itself is wrong (HTTP 400/404 with a non-zero code, such as
  1002 "does not exist"); retrying cannot help, the order fails.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import requests

from core.text import pii_masked, text_clean

#: Zoho's message is kept to this many characters, cleaned and with emails and phones masked (a NUL or
#: broken UTF-8 in it must never stop ``last_error`` from being written; Zoho may echo the customer).
MESSAGE_MAX_CHARS = 500

#: Zoho codes that mean "slow down" whatever the HTTP status they come with.
RATE_LIMIT_CODES = frozenset({43, 44, 45, 1070, 4820, 4421})
#: The limit codes others report for Zoho's HTTP 429 answers; no Zoho page we can read lists them, and
#: a third-party table calls 45 the per-minute one. Shown to staff as a hint, never acted on.
LIMIT_CODE_MEANINGS = {
    44: ": per minute, as others report it",
    45: ": daily or per minute, reports differ",
    1070: ": calls in flight, as others report it",
}
#: Zoho codes (with HTTP 401) that mean the access token is invalid or expired.
INVALID_TOKEN_CODES = frozenset({14, 57, 4834})


class ZohoError(Exception):
    """A failed Zoho call: HTTP status (None without an answer), Zoho's code and message."""

    def __init__(
        self, message: str, *, http_status: int | None = None, code: int | None = None, retry_after: float | None = None
    ):
        message = pii_masked(text_clean(message, max_chars=MESSAGE_MAX_CHARS))
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after

    def describe(self) -> str:
        """For ``last_error`` and logs: status, code and Zoho's message (never tokens or bodies)."""
        parts = [type(self).__name__]
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.code is not None:
            parts.append(f"code {self.code}")
        return f"{' '.join(parts)}: {self.message}"[:1000]


class ZohoTransientError(ZohoError):
    """Retry later."""


class ZohoAuthError(ZohoTransientError):
    """Authentication failed (token refresh refused, or 401 after a fresh token): an outage."""


class ZohoInvalidTokenError(ZohoAuthError):
    """HTTP 401 with an invalid-token code: drop the cached token and retry the call once."""


class ZohoWaitError(ZohoTransientError):
    """Zoho takes no calls from us for ``retry_after`` seconds (the shared budget is paused, the
    daily cap is reached, or our credentials are in their back-off): Zoho's wait, not the order's,
    so it does not use up the order's own retry schedule."""


class ZohoAuthWaitError(ZohoWaitError, ZohoAuthError):
    """Zoho refused our credentials; every worker waits out the shared back-off before asking again."""


class ZohoPermanentError(ZohoError):
    """The request is invalid or names something that does not exist; do not retry."""


class ZohoCustomerUnknownError(ZohoPermanentError):
    """The sales-order create named a ``customer_id`` Zoho does not know (merged, deleted, or a
    sandbox restarted): the caller forgets its cached contact and finds or creates it again."""


def _body(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def error_from_response(response: requests.Response) -> ZohoError | None:
    """None for a success (HTTP 2xx and ``code`` 0 or absent), else the classified error."""
    body = _body(response)
    status = response.status_code
    code = body.get("code")
    code = code if isinstance(code, int) else None
    message = str(body.get("message") or response.reason or "no message")
    if 200 <= status < 300 and not code:
        return None
    retry_after = _retry_after(response)
    if status == 429 or (code in RATE_LIMIT_CODES):
        return ZohoTransientError(message, http_status=status, code=code, retry_after=retry_after)
    if status == 401:
        if code in INVALID_TOKEN_CODES or code is None:
            return ZohoInvalidTokenError(message, http_status=status, code=code)
        return ZohoAuthError(message, http_status=status, code=code)
    if status >= 500 or status in (408, 409, 423):
        return ZohoTransientError(message, http_status=status, code=code, retry_after=retry_after)
    if status == 403:
        # The organisation or the scope is wrong: an outage to fix in configuration, not the order.
        return ZohoAuthError(message, http_status=status, code=code)
    if status in (400, 404) and code:
        # Only Zoho saying the item or customer data is invalid fails the order. Anything else (a
        # 4xx without a code, an odd 2xx with a code) may be our configuration or Zoho's hiccup: the
        # order keeps retrying on the schedule and fails only when its retry window ends.
        return ZohoPermanentError(message, http_status=status, code=code)
    return ZohoTransientError(message, http_status=status, code=code, retry_after=retry_after)


def error_from_exception(exc: requests.RequestException) -> ZohoTransientError:
    """A call that got no usable answer (connection refused, DNS, timeout, broken body)."""
    return ZohoTransientError(f"{type(exc).__name__}: no answer from Zoho")


def token_error_from_response(response: requests.Response) -> ZohoError | None:
    """The token endpoint fails with HTTP 200 and an ``error`` field too; any failure is transient
    for the order (an outage), never a reason to fail it."""
    body = _body(response)
    if 200 <= response.status_code < 300 and body.get("access_token") and not body.get("error"):
        return None
    reason = str(body.get("error") or body.get("message") or f"HTTP {response.status_code}")[:200]
    if response.status_code >= 500 or response.status_code == 429:
        return ZohoTransientError(
            f"token refresh failed: {reason}", http_status=response.status_code, retry_after=_retry_after(response)
        )
    return ZohoAuthError(f"token refresh failed: {reason}", http_status=response.status_code)
