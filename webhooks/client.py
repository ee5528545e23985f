"""The HTTP side of a delivery: the URL guard and one POST with a hard total deadline, no redirects.

The guard (``webhook_url_check``) refuses URLs that parsers read differently, resolves the name
once and checks every address; the POST then connects to that checked address
(``PinnedAddressAdapter``), with TLS SNI and certificate verification for the configured name.

``WebhookClient.post`` (or ``check`` once and ``send`` for each event of a batch) never raises for a
failed delivery: a refused URL, a DNS, connection or TLS error, or a timeout come back as a
``DeliveryResult`` with ``error`` set, so that the caller records them as attempts like any HTTP
status.

Every POST runs under an ``AttemptDeadline`` (``deadline.py``): connect, TLS, the status line, the
headers and the body together take at most the attempt's seconds, however slowly the receiver
sends. What is kept of the answer is cleaned (``text_clean``) so that it can always be stored.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from core.text import text_clean
from webhooks.deadline import POOL_CLASSES, AttemptDeadline

logger = logging.getLogger(__name__)

USER_AGENT = "IconTech-Webhooks/1"
RESPONSE_EXCERPT_BYTES = 2048
ERROR_MAX_CHARS = 500
TIMEOUT_PREFIX = "timeout after "  # how an attempt that ran out of time begins its error
IDLE_SESSIONS_MAX = 32  # sessions kept for reuse per client; more in use at once are closed after


class UrlRefused(Exception):
    """The webhook URL may not be called (its form, scheme, or an address that is not public)."""


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


@dataclass(frozen=True)
class CheckedUrl:
    """A webhook URL that passed the guard, with the one address the delivery must connect to."""

    url: str
    scheme: str
    hostname: str  # as written (an IP literal without brackets), for the Host header, SNI and the certificate
    port: int
    address: str  # the checked address: the delivery connects here and nowhere else
    target: str  # path and query

    @property
    def pinned_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


# IPv6 ranges that carry (or once carried) an IPv4 address inside them: NAT64 (RFC 6052, 8215),
# 6to4, IPv4-compatible (deprecated), site-local (deprecated) and Teredo. Python's ``is_global`` calls
# some of them global, so a private IPv4 could be reached through them.
EMBEDDING_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96", "fec0::/10", "2001::/32")
)


def address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is not a public unicast target, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_refusal(address.ipv4_mapped)
        if any(address in network for network in EMBEDDING_NETWORKS):
            return "an IPv6 form that embeds an IPv4 address"
    for flag in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(address, flag):
            return flag.removeprefix("is_").replace("_", "-")
    if not address.is_global:
        return "not globally routable"
    return None


def _refuse_form(url: str) -> None:
    if not url:
        raise UrlRefused("no valid webhook URL configured")
    if any(not (0x21 <= ord(char) <= 0x7E) for char in url):
        raise UrlRefused("webhook URL has whitespace, control or non-ASCII characters")
    if "\\" in url:
        raise UrlRefused("webhook URL has a backslash")


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    hostname: str
    port: int
    target: str  # path and query


def webhook_url_parse(url: str, *, allow_private: bool | None = None) -> ParsedUrl:
    """The URL's parts, or ``UrlRefused`` when its form is refused (no DNS lookup).

    The URL must be plain: printable ASCII only, no backslash, no userinfo (``user@``), no
    percent-encoding in the host, a numeric port; and urllib3 (which ``requests`` connects with)
    must read the same host and port from it as ``urlsplit`` does. https only in production.
    """
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    url = url or ""
    _refuse_form(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise UrlRefused("webhook URL cannot be parsed") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("no valid webhook URL configured")
    if "@" in parts.netloc:
        raise UrlRefused("webhook URL may not carry a user name or password")
    if "%" in parts.netloc:
        raise UrlRefused("webhook URL host may not be percent-encoded")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        seen_by_urllib3 = parse_url(url)
    except (ValueError, LocationParseError):
        raise UrlRefused("webhook URL has an invalid host or port") from None
    hostname = parts.hostname
    if (seen_by_urllib3.host or "").strip("[]").lower() != hostname.lower() or (seen_by_urllib3.port or port) != port:
        raise UrlRefused("webhook URL is read differently by the HTTP client")
    if not allow_private and parts.scheme != "https":
        raise UrlRefused("webhook URL must use https")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return ParsedUrl(scheme=parts.scheme, hostname=hostname, port=port, target=target)


def webhook_url_check(url: str, *, allow_private: bool | None = None) -> CheckedUrl:
    """The checked URL with the one address to connect to, or ``UrlRefused``.

    ``webhook_url_parse`` first; then the name is resolved once. In production
    (``WEBHOOK_ALLOW_PRIVATE_URLS`` false) every address it resolves to must be public unicast (no
    loopback, private, link-local, shared, reserved, multicast, nor an IPv6 form embedding IPv4). The
    delivery connects to the first checked address, so a second DNS answer (rebinding) is never used.
    """
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    parsed = webhook_url_parse(url, allow_private=allow_private)
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise UrlRefused(f"cannot resolve {parsed.hostname}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UrlRefused(f"cannot resolve {parsed.hostname}")
    if not allow_private:
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise UrlRefused(f"{parsed.hostname} resolves to a non-public address ({address}: {reason})")
    return CheckedUrl(
        url=url,
        scheme=parsed.scheme,
        hostname=parsed.hostname,
        port=parsed.port,
        address=str(addresses[0]),
        target=parsed.target,
    )


def webhook_url_validate(url: str) -> None:
    """What the admin's URL field runs: the form always; DNS and the address classes in production,
    where a URL that will be refused at delivery must not be saved."""
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        webhook_url_parse(url, allow_private=True)
    else:
        webhook_url_check(url, allow_private=False)


class PinnedAddressAdapter(HTTPAdapter):
    """Sends a request to the IP in its URL while TLS (SNI and the certificate check) uses the name
    the partner configured, carried on the prepared request as ``tls_hostname``.

    urllib3 2 takes ``server_hostname`` (SNI) and ``assert_hostname`` (the name the certificate must
    match) per connection pool; requests builds the pool key in
    ``build_connection_pool_key_attributes``, so they are added there and pools stay per name.
    """

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOL_CLASSES  # connections that report to the deadline

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        hostname = getattr(request, "tls_hostname", None)
        if hostname and host_params.get("scheme") == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


class WebhookClient:
    """POSTs to partner endpoints over keep-alive ``requests.Session``s from a pool that the
    process's threads share: a session is used by one thread at a time, and kept for the next
    attempt, so that a batch's lanes reuse their connections from one batch to the next."""

    def __init__(self, *, timeout: float | None = None, verify: bool | str = True):
        self.timeout = timeout
        self.verify = verify  # True (the system's CAs) or a CA bundle path, e.g. a staging CA
        self._idle: list[requests.Session] = []
        self._lock = threading.Lock()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc credentials from the environment
        session.verify = self.verify
        adapter = PinnedAddressAdapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @contextmanager
    def _session(self, deadline: AttemptDeadline) -> Iterator[requests.Session]:
        """A session for one attempt; one whose attempt the deadline cut is closed, not kept."""
        with self._lock:
            session = self._idle.pop() if self._idle else None
        session = session or self._new_session()
        try:
            yield session
        finally:
            keep = not deadline.expired
            if keep:
                with self._lock:
                    keep = len(self._idle) < IDLE_SESSIONS_MAX
                    if keep:
                        self._idle.append(session)
            if not keep:
                session.close()

    def check(self, url: str) -> CheckedUrl | DeliveryResult:
        """The URL guard once, for every attempt of a batch: the checked URL, or the refusal as the
        result each attempt records."""
        started = time.monotonic()
        try:
            return webhook_url_check(url)
        except UrlRefused as exc:
            elapsed_ms = int((time.monotonic() - started) * 1000)
            return DeliveryResult(status_code=None, duration_ms=elapsed_ms, error=_error_text(f"refused: {exc}"))

    def post(self, *, url: str, body: bytes, headers: dict, seconds: float | None = None) -> DeliveryResult:
        checked = self.check(url)
        if isinstance(checked, DeliveryResult):
            return checked
        return self.send(checked=checked, body=body, headers=headers, seconds=seconds)

    def send(self, *, checked: CheckedUrl, body: bytes, headers: dict, seconds: float | None = None) -> DeliveryResult:
        """One POST to the address the guard checked, never to a second DNS answer, ended after
        ``seconds`` (the client's timeout, else WEBHOOK_TIMEOUT_SECONDS) whatever the receiver does.
        Never raises for anything the receiver sends or does."""
        if seconds is None:
            seconds = self.timeout if self.timeout is not None else settings.WEBHOOK_TIMEOUT_SECONDS
        started = time.monotonic()
        try:
            with AttemptDeadline(seconds) as deadline:
                return self._send(checked=checked, body=body, headers=headers, deadline=deadline, started=started)
        except Exception as exc:  # never lose an attempt's record to something unforeseen in an answer
            logger.warning("webhook attempt ended by an unexpected error: %s", type(exc).__name__, exc_info=True)
            return DeliveryResult(
                status_code=None, duration_ms=_ms_since(started), error=_error_text(f"{type(exc).__name__}: {exc}")
            )

    def _send(
        self, *, checked: CheckedUrl, body: bytes, headers: dict, deadline: AttemptDeadline, started: float
    ) -> DeliveryResult:
        timed_out = f"{TIMEOUT_PREFIX}{deadline.seconds:g} s"
        all_headers = {"content-type": "application/json", "user-agent": USER_AGENT, **headers}
        all_headers["Host"] = checked.host_header
        with self._session(deadline) as session:
            request = session.prepare_request(
                requests.Request("POST", checked.pinned_url, data=body, headers=all_headers)
            )
            request.tls_hostname = checked.hostname
            try:
                # Each socket wait is bounded by what is left; the deadline bounds their sum.
                left = max(deadline.remaining(), 0.001)
                response = session.send(
                    request, timeout=(left, left), allow_redirects=False, stream=True, verify=self.verify
                )
            except requests.RequestException as exc:
                if deadline.passed() or isinstance(exc, requests.Timeout):
                    return DeliveryResult(status_code=None, duration_ms=_ms_since(started), error=timed_out)
                return DeliveryResult(
                    status_code=None, duration_ms=_ms_since(started), error=_error_text(f"{type(exc).__name__}: {exc}")
                )
            excerpt, body_error = b"", ""
            try:
                excerpt, complete = _excerpt_read(response, deadline)
                if not complete and deadline.passed():
                    body_error = f"{timed_out} reading the response body"
            finally:
                response.close()
        error = body_error
        if response.is_redirect or 300 <= response.status_code < 400:
            error = f"redirect to {response.headers.get('location', '?')} not followed"
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return DeliveryResult(
            status_code=response.status_code,
            duration_ms=_ms_since(started),
            error=_error_text(error),
            response_excerpt=text_clean(excerpt, max_chars=RESPONSE_EXCERPT_BYTES),
            retry_after=retry_after,
        )


def _excerpt_read(response: requests.Response, deadline: AttemptDeadline) -> tuple[bytes, bool]:
    """Up to RESPONSE_EXCERPT_BYTES of the body, read as it arrives and never past the deadline;
    ``(excerpt, whole body read)``. A broken or cut body keeps what had arrived: the status line
    arrived, and it alone decides the outcome."""
    excerpt = b""
    try:
        while len(excerpt) < RESPONSE_EXCERPT_BYTES and not deadline.passed():
            chunk = response.raw.read1(RESPONSE_EXCERPT_BYTES - len(excerpt), decode_content=True)
            if not chunk:  # the end of the body, unless the deadline cut the connection
                return excerpt, not deadline.expired
            excerpt += chunk
    except (Urllib3Error, requests.RequestException, OSError, ValueError):
        pass
    return excerpt, False


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _error_text(error: str) -> str:
    """An attempt's error as it is stored: exception texts and headers may hold anything."""
    return text_clean(error, max_chars=ERROR_MAX_CHARS)
