"""The HTTP side of a delivery: the URL guard and one POST with a total deadline, no redirects.

``WebhookClient.post`` never raises for a failed delivery: a refused URL, a DNS, connection or TLS
error, or a timeout come back as a ``DeliveryResult`` with ``error`` set, so that the caller records
them as attempts like any HTTP status.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils import timezone

USER_AGENT = "IconTech-Webhooks/1"
RESPONSE_EXCERPT_BYTES = 2048
ERROR_MAX_CHARS = 500


class UrlRefused(Exception):
    """The webhook URL may not be called (scheme, or an address that is not public)."""


@dataclass(frozen=True)
class DeliveryResult:
    status_code: int | None
    duration_ms: int
    error: str = ""
    response_excerpt: str = ""
    retry_after: float | None = None  # seconds, from a Retry-After header

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def webhook_url_check(url: str, *, allow_private: bool | None = None) -> None:
    """Raise ``UrlRefused`` unless ``url`` may be called.

    In production (``WEBHOOK_ALLOW_PRIVATE_URLS`` false) only https is allowed, and every address the
    host resolves to must be globally routable: no loopback, private, link-local, shared, reserved
    or multicast target, so that a partner URL cannot reach our own network.
    """
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("no valid webhook URL configured")
    if allow_private:
        return
    if parts.scheme != "https":
        raise UrlRefused("webhook URL must use https")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:
            address = mapped
        if not address.is_global or address.is_multicast:
            raise UrlRefused(f"{parts.hostname} resolves to a non-public address ({address})")


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


class WebhookClient:
    """POSTs to partner endpoints; one ``requests.Session`` per thread (keep-alive, thread safety)."""

    def __init__(self, *, timeout: float | None = None):
        self.timeout = timeout
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or .netrc credentials from the environment
            self._local.session = session
        return session

    def post(self, *, url: str, body: bytes, headers: dict) -> DeliveryResult:
        total = self.timeout if self.timeout is not None else settings.WEBHOOK_TIMEOUT_SECONDS
        started = time.monotonic()
        deadline = started + total

        def elapsed_ms() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            webhook_url_check(url)
        except UrlRefused as exc:
            return DeliveryResult(status_code=None, duration_ms=elapsed_ms(), error=f"refused: {exc}"[:ERROR_MAX_CHARS])
        all_headers = {"content-type": "application/json", "user-agent": USER_AGENT, **headers}
        try:
            # connect and each read are bounded by what is left of the total; the body read below
            # stops at the deadline too.
            response = self.session.post(
                url,
                data=body,
                headers=all_headers,
                timeout=(total, total),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            return DeliveryResult(status_code=None, duration_ms=elapsed_ms(), error=f"timeout after {total:g} s")
        except requests.RequestException as exc:
            return DeliveryResult(
                status_code=None, duration_ms=elapsed_ms(), error=f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
            )
        try:
            excerpt = b""
            for chunk in response.iter_content(chunk_size=RESPONSE_EXCERPT_BYTES):
                excerpt += chunk
                if len(excerpt) >= RESPONSE_EXCERPT_BYTES or time.monotonic() >= deadline:
                    break
        except requests.RequestException:
            pass  # the status line arrived; a broken body does not change the outcome
        finally:
            response.close()
        error = ""
        if response.is_redirect or 300 <= response.status_code < 400:
            error = f"redirect to {response.headers.get('location', '?')} not followed"[:ERROR_MAX_CHARS]
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return DeliveryResult(
            status_code=response.status_code,
            duration_ms=elapsed_ms(),
            error=error,
            response_excerpt=excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace"),
            retry_after=retry_after,
        )
