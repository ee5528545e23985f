"""The one Zoho Inventory client: OAuth refresh-token flow, the shared call budget, typed results.

Every call: take a token and a slot from the shared budget (``budget.py``), send
``Authorization: Zoho-oauthtoken …`` and ``organization_id``, with a 10 s connect / 30 s read
timeout, and turn the answer into a small dataclass or a classified error (``errors.py``). The rest
of the code never sees Zoho's JSON.

The access token lives in the shared cache until a minute before it expires. One process at a time
refreshes it (a cache lock, ``cache.add``); the others wait for its result. Zoho allows only ten
access tokens per refresh token in ten minutes and then blocks the rest of the window, so when Zoho
refuses our credentials (a failed refresh, or a 401 that survives a fresh token) every worker waits
out one shared back-off before the next token request: 2 minutes, doubling to 10, and 10 minutes
after an ``Access Denied`` from the token endpoint (``auth_backoff_*``). Health shows since when.

A limit answer (HTTP 429) pauses the shared budget for every worker (``budget.py``): code 44 (per
minute) and 1070 (concurrency) for their ``Retry-After`` or 60 s, code 45 (daily) until the next
local day. These, and the credentials' back-off, raise ``ZohoWaitError``: Zoho's wait, which does
not use up an order's retry schedule.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.cache import cache

from integrations.zoho.budget import LIMIT_PAUSE_SECONDS, seconds_until_tomorrow, zoho_budget
from integrations.zoho.errors import (
    CODE_CONCURRENCY,
    CODE_DAILY,
    CODE_PER_MINUTE,
    ZohoAuthError,
    ZohoAuthWaitError,
    ZohoCustomerUnknownError,
    ZohoError,
    ZohoInvalidTokenError,
    ZohoPermanentError,
    ZohoTransientError,
    ZohoWaitError,
    error_from_exception,
    error_from_response,
    token_error_from_response,
)

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
ITEMS_PER_PAGE = 200
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
SALES_ORDERS_PER_PAGE = 200
# Set while the token answer's ``api_domain`` names another data centre than ZOHO_API_BASE; read by
# GET /t2mobile/health. Refreshed with every token (about hourly), so it clears itself once fixed.
DATA_CENTRE_MISMATCH_KEY = "zoho:data_centre_mismatch"
DATA_CENTRE_MISMATCH_SECONDS = 2 * 3600
_data_centre_logged = False


@dataclass(frozen=True)
class Item:
    item_id: str
    name: str
    sku: str
    description: str
    rate: Decimal
    status: str
    unit: str


@dataclass(frozen=True)
class ItemPage:
    items: list[Item]
    has_more: bool


@dataclass(frozen=True)
class Contact:
    contact_id: str
    contact_name: str
    email: str


@dataclass(frozen=True)
class SalesOrder:
    salesorder_id: str
    salesorder_number: str
    reference_number: str
    status: str
    customer_id: str = ""
    notes: str = ""
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LineItem:
    item_id: str
    quantity: int
    rate: Decimal
    description: str = ""


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0))
    except InvalidOperation:
        return Decimal(0)


def _item(raw: dict) -> Item:
    return Item(
        item_id=str(raw["item_id"]),
        name=str(raw.get("name") or raw.get("item_name") or ""),
        sku=str(raw.get("sku") or ""),
        description=str(raw.get("description") or ""),
        rate=_decimal(raw.get("rate")),
        status=str(raw.get("status") or "active").lower(),
        unit=str(raw.get("unit") or ""),
    )


def _sales_order(raw: dict) -> SalesOrder:
    # Each custom field is kept under its ``customfield_id`` and its ``label``: the two keys Zoho
    # documents for writing one, so a reader can look it up by whichever the settings name.
    custom: dict[str, str] = {}
    for entry in raw.get("custom_fields") or []:
        if isinstance(entry, dict):
            for key in ("customfield_id", "label"):
                if entry.get(key) not in (None, ""):
                    custom[str(entry[key])] = str(entry.get("value") or "")
    return SalesOrder(
        salesorder_id=str(raw["salesorder_id"]),
        salesorder_number=str(raw.get("salesorder_number") or ""),
        reference_number=str(raw.get("reference_number") or ""),
        status=str(raw.get("status") or "").lower(),
        customer_id=str(raw.get("customer_id") or ""),
        notes=str(raw.get("notes") or ""),
        custom_fields=custom,
    )


def _sales_order_from_body(body: dict) -> SalesOrder:
    # Zoho's documented create answer names the object ``sales_order``, the get answer ``salesorder``.
    raw = body.get("salesorder") or body.get("sales_order")
    if not isinstance(raw, dict) or "salesorder_id" not in raw:
        raise ZohoTransientError("Zoho answered without a sales order")
    return _sales_order(raw)


def custom_field_entry(*, value: str, customfield_id: str = "", label: str = "") -> dict:
    """A sales order's custom field as Zoho documents it: by ``customfield_id`` (wins), else ``label``."""
    if customfield_id:
        return {"customfield_id": customfield_id, "value": value}
    if label:
        return {"label": label, "value": value}
    raise ValueError("a custom field needs a customfield_id or a label")


def _customer_unknown(error: ZohoPermanentError) -> bool:
    # Zoho's "does not exist" answers share code 1002 ("Item does not exist.", "Customer does not
    # exist."), so the message tells which record is missing.
    message = error.message.lower()
    return "customer" in message and ("does not exist" in message or "invalid" in message)


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
            cache.delete(DATA_CENTRE_MISMATCH_KEY)
        else:
            cache.set(DATA_CENTRE_MISMATCH_KEY, 1, timeout=DATA_CENTRE_MISMATCH_SECONDS)
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


def _auth_failing_mark(error: ZohoError) -> None:
    """Zoho refused our credentials: health says so until a token refresh works (or 15 minutes)."""
    cache.set(AUTH_FAILING_KEY, error.message[:200], timeout=AUTH_FAILING_SECONDS)
    cache.add(AUTH_FAILING_SINCE_KEY, time.time(), timeout=None)


def auth_backoff_record(error: ZohoError) -> float:
    """Every worker waits this many seconds before the next token request (shared in the cache):
    2 minutes after the first refusal, doubling to 10; 10 minutes after ``Access Denied``."""
    previous = cache.get(AUTH_BACKOFF_KEY) or {}
    if "access denied" in error.message.lower():
        step = AUTH_BACKOFF_ACCESS_DENIED_SECONDS
    elif previous:
        step = min(AUTH_BACKOFF_MAX_SECONDS, int(previous.get("step", 0)) * 2 or AUTH_BACKOFF_FIRST_SECONDS)
    else:
        step = AUTH_BACKOFF_FIRST_SECONDS
    # Remembered past its wait, so that the next refusal doubles it; a working token clears it.
    cache.set(
        AUTH_BACKOFF_KEY,
        {"until": time.time() + step, "step": step, "reason": error.message[:200]},
        timeout=step + AUTH_BACKOFF_MAX_SECONDS * 2,
    )
    _auth_failing_mark(error)
    logger.warning("zoho refuses our credentials; token requests wait %d s: %s", step, error.describe())
    return step


def auth_backoff_left() -> tuple[float, str] | None:
    """(seconds left, reason) while the credentials' back-off is in force."""
    state = cache.get(AUTH_BACKOFF_KEY)
    if not state:
        return None
    left = float(state.get("until", 0)) - time.time()
    return (left, str(state.get("reason", ""))) if left > 0 else None


def auth_failing_since() -> float | None:
    """Epoch seconds since Zoho has refused our credentials, while it does."""
    if cache.get(AUTH_FAILING_KEY) is None:
        return None
    return cache.get(AUTH_FAILING_SINCE_KEY)


def _auth_recovered() -> None:
    cache.delete_many([AUTH_FAILING_KEY, AUTH_FAILING_SINCE_KEY, AUTH_BACKOFF_KEY])


class ZohoClient:
    def __init__(
        self,
        *,
        accounts_url: str,
        api_base: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        organization_id: str,
        budget=None,
    ):
        self.accounts_url = accounts_url.rstrip("/")
        self.api_base = api_base.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.organization_id = organization_id
        self.budget = budget
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        scope = hashlib.sha256(f"{self.accounts_url}|{client_id}|{refresh_token}".encode()).hexdigest()[:16]
        self._token_key = f"zoho:access_token:{scope}"
        self._lock_key = f"zoho:access_token_lock:{scope}"

    @classmethod
    def from_settings(cls) -> ZohoClient:
        return cls(
            accounts_url=settings.ZOHO_ACCOUNTS_URL,
            api_base=settings.ZOHO_API_BASE,
            client_id=settings.ZOHO_CLIENT_ID,
            client_secret=settings.ZOHO_CLIENT_SECRET,
            refresh_token=settings.ZOHO_REFRESH_TOKEN,
            organization_id=settings.ZOHO_ORGANIZATION_ID,
        )

    # --- OAuth ----------------------------------------------------------------------------------

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
            if cache.add(self._lock_key, owner, timeout=TOKEN_LOCK_SECONDS):
                try:
                    token = cache.get(self._token_key)  # another process may have finished just now
                    if token:
                        return token
                    return self._refresh_token()
                finally:
                    if cache.get(self._lock_key) == owner:
                        cache.delete(self._lock_key)
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
            raise error_from_exception(exc) from exc
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

    # --- Transport ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict | None = None, json: dict | None = None) -> dict:
        budget = self.budget or zoho_budget()
        query = {**(params or {}), "organization_id": self.organization_id}
        for attempt in (1, 2):
            token = self.access_token()
            with budget.call_slot():
                try:
                    response = self.session.request(
                        method,
                        f"{self.api_base}{path}",
                        params=query,
                        json=json,
                        headers={"Authorization": f"Zoho-oauthtoken {token}"},
                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                    )
                except requests.RequestException as exc:
                    raise error_from_exception(exc) from exc
            error = error_from_response(response)
            if error is None:
                try:
                    body = response.json()
                except ValueError as exc:
                    raise ZohoTransientError("Zoho answered with a body that is not JSON") from exc
                if not isinstance(body, dict):
                    raise ZohoTransientError("Zoho answered with a body that is not an object")
                return body
            if isinstance(error, ZohoInvalidTokenError):
                self._drop_token(token)
                if attempt == 1:
                    continue
                refused = ZohoAuthError(
                    f"still unauthorised after a token refresh: {error.message}",
                    http_status=error.http_status,
                    code=error.code,
                )
                step = auth_backoff_record(refused)
                raise ZohoAuthWaitError(
                    refused.message, http_status=error.http_status, code=error.code, retry_after=step
                )
            if isinstance(error, ZohoAuthError):  # 403: the organisation or scope is refused
                _auth_failing_mark(error)
            logger.info("zoho %s %s failed: %s", method, path.split("?")[0], error.describe())
            if error.http_status == 429:
                raise self._limit_pause(budget, error)
            if error.retry_after:
                budget.pause(error.retry_after, reason=f"Zoho asked us to wait ({error.describe()})")
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _limit_pause(budget, error: ZohoError) -> ZohoWaitError:
        """A limit answer (HTTP 429) pauses every worker; Zoho documents no Retry-After for them."""
        if error.code == CODE_DAILY:
            seconds = error.retry_after or seconds_until_tomorrow()
            reason = "Zoho's daily call limit reached (code 45): calls wait for the next day"
        elif error.code == CODE_CONCURRENCY:
            seconds = error.retry_after or LIMIT_PAUSE_SECONDS
            reason = "Zoho's limit of calls in flight reached (code 1070)"
        elif error.code == CODE_PER_MINUTE:
            seconds = error.retry_after or LIMIT_PAUSE_SECONDS
            reason = "Zoho's per-minute call limit reached (code 44)"
        else:
            seconds = error.retry_after or LIMIT_PAUSE_SECONDS
            reason = f"Zoho answered HTTP 429 (code {error.code})"
        budget.pause(seconds, reason=reason)
        return ZohoWaitError(f"{reason}; paused {seconds:.0f} s", http_status=429, code=error.code, retry_after=seconds)

    # --- Items ----------------------------------------------------------------------------------

    def items_page(self, *, page: int, per_page: int = ITEMS_PER_PAGE) -> ItemPage:
        body = self._request("GET", "/items", params={"page": page, "per_page": per_page})
        items = [_item(raw) for raw in body.get("items") or [] if isinstance(raw, dict) and raw.get("item_id")]
        has_more = bool((body.get("page_context") or {}).get("has_more_page"))
        return ItemPage(items=items, has_more=has_more)

    def items(self) -> Iterator[Item]:
        page = 1
        while True:
            result = self.items_page(page=page)
            yield from result.items
            if not result.has_more:
                return
            page += 1

    def item_get(self, *, item_id: str) -> Item:
        return _item(self._request("GET", f"/items/{item_id}")["item"])

    # --- Contacts -------------------------------------------------------------------------------

    def contact_find_by_email(self, *, email: str) -> Contact | None:
        body = self._request("GET", "/contacts", params={"email": email})
        for raw in body.get("contacts") or []:
            found_email = str(raw.get("email") or "")
            # The filter may match loosely; an empty email on the row means Zoho filtered for us.
            if raw.get("contact_id") and (not found_email or found_email.lower() == email.lower()):
                return Contact(str(raw["contact_id"]), str(raw.get("contact_name") or ""), found_email)
        return None

    def contact_find_by_name(self, *, name: str) -> Contact | None:
        """The contact whose ``contact_name`` is exactly ``name`` (Zoho's filter, checked here)."""
        body = self._request("GET", "/contacts", params={"contact_name": name})
        for raw in body.get("contacts") or []:
            if raw.get("contact_id") and str(raw.get("contact_name") or "") == name:
                return Contact(str(raw["contact_id"]), name, str(raw.get("email") or ""))
        return None

    def contact_create(self, *, name: str, email: str = "", phone: str = "") -> Contact:
        """A customer contact; with an email or phone, a primary contact person carries them."""
        payload: dict[str, Any] = {"contact_name": name, "contact_type": "customer"}
        if email or phone:
            first_name, _, last_name = name.partition(" ")
            payload["contact_persons"] = [
                {
                    "first_name": first_name,
                    "last_name": last_name,
                    "email": email,
                    "phone": phone,
                    "is_primary_contact": True,
                }
            ]
        body = self._request("POST", "/contacts", json=payload)
        raw = body.get("contact") or {}
        if not raw.get("contact_id"):
            raise ZohoTransientError("Zoho answered without a contact")
        return Contact(str(raw["contact_id"]), str(raw.get("contact_name") or name), email)

    # --- Sales orders ---------------------------------------------------------------------------

    def sales_order_find_by_reference(self, *, reference: str) -> SalesOrder | None:
        """The sales order whose ``reference_number`` is exactly ``reference``.

        Zoho Inventory does not document this filter (Zoho Books does) and it may match loosely or
        not at all, so every page is read (``page_context.has_more_page``) until an exact match.
        """
        page = 1
        while True:
            body = self._request(
                "GET",
                "/salesorders",
                params={"reference_number": reference, "page": page, "per_page": SALES_ORDERS_PER_PAGE},
            )
            rows = [raw for raw in body.get("salesorders") or body.get("sales_orders") or [] if isinstance(raw, dict)]
            matches = [
                _sales_order(raw)
                for raw in rows
                if raw.get("salesorder_id") and str(raw.get("reference_number") or "") == reference
            ]
            if matches:
                if len(matches) > 1:
                    logger.warning("zoho has %d sales orders with one reference; using the first", len(matches))
                return matches[0]
            if not (body.get("page_context") or {}).get("has_more_page"):
                return None
            if not rows:
                # "More pages" after an empty one would loop for ever; not knowing is not "none".
                raise ZohoTransientError("Zoho announced more sales orders after an empty page")
            page += 1

    def sales_order_get(self, *, salesorder_id: str) -> SalesOrder:
        return _sales_order_from_body(self._request("GET", f"/salesorders/{salesorder_id}"))

    def sales_order_create(
        self,
        *,
        customer_id: str,
        reference: str,
        on: date,
        line_items: list[LineItem],
        notes: str = "",
        custom_fields: list[dict] | None = None,
    ) -> SalesOrder:
        payload: dict[str, Any] = {
            "customer_id": customer_id,
            "reference_number": reference,
            "date": on.isoformat(),
            "line_items": [
                {"item_id": li.item_id, "quantity": li.quantity, "rate": float(li.rate), "description": li.description}
                for li in line_items
            ],
            "notes": notes,
        }
        if custom_fields:
            payload["custom_fields"] = custom_fields
        try:
            body = self._request("POST", "/salesorders", json=payload)
        except ZohoPermanentError as exc:
            if _customer_unknown(exc):
                raise ZohoCustomerUnknownError(exc.message, http_status=exc.http_status, code=exc.code) from exc
            raise
        return _sales_order_from_body(body)

    def sales_order_confirm(self, *, salesorder_id: str) -> None:
        self._request("POST", f"/salesorders/{salesorder_id}/status/confirmed")


_clients: dict[tuple, ZohoClient] = {}
_clients_lock = threading.Lock()


def zoho_client() -> ZohoClient:
    """The process's client (one ``requests.Session``) for the current Zoho settings."""
    config = (
        settings.ZOHO_ACCOUNTS_URL,
        settings.ZOHO_API_BASE,
        settings.ZOHO_CLIENT_ID,
        settings.ZOHO_CLIENT_SECRET,
        settings.ZOHO_REFRESH_TOKEN,
        settings.ZOHO_ORGANIZATION_ID,
    )
    with _clients_lock:
        client = _clients.get(config)
        if client is None:
            client = _clients[config] = ZohoClient.from_settings()
        return client


__all__ = [
    "Contact",
    "Item",
    "ItemPage",
    "LineItem",
    "SalesOrder",
    "ZohoClient",
    "ZohoError",
    "zoho_client",
]
