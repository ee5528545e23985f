"""The one Zoho Inventory client: every call the gateway makes, the shared call budget, typed results.

Every call: take a token (``auth.py``) and a slot from the shared budget (``budget.py``), send
``Authorization: Zoho-oauthtoken …`` and ``organization_id``, with a 10 s connect / 30 s read
timeout, and turn the answer into a small dataclass (``values.py``) or a classified error
(``errors.py``). The rest of the code never sees Zoho's JSON. A 401 gets one fresh token; a 401 that
survives it, like a refused token request, starts the credentials' shared back-off (``auth.py``).

A limit answer (HTTP 429) pauses the shared budget for every worker (``budget.py``): for its
``Retry-After``, else 60 s doubling while they keep coming, whatever its code (Zoho documents none of
them). These, and the credentials' back-off, raise ``ZohoWaitError``: Zoho's wait, which does not use
up an order's retry schedule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from django.conf import settings
from django.core.cache import cache

from core.instruments import zoho_call_count, zoho_endpoint
from integrations.zoho.auth import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    ZohoOAuth,
    auth_backoff_record,
    auth_failing_mark,
)
from integrations.zoho.budget import (
    DAY_ZONE_CACHE_KEY,
    DAY_ZONE_CACHE_SECONDS,
    zoho_budget,
    zoho_day_zone_forget,
)
from integrations.zoho.errors import (
    LIMIT_CODE_MEANINGS,
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
)
from integrations.zoho.values import (
    Contact,
    Item,
    ItemPage,
    LineItem,
    SalesOrder,
    item_from_zoho,
    sales_order_from_body,
    sales_order_from_zoho,
)

logger = logging.getLogger(__name__)

ITEMS_PER_PAGE = 200
LIST_PER_PAGE = 200  # Zoho's largest page


def _customer_unknown(error: ZohoPermanentError) -> bool:
    # Zoho's "does not exist" answers share code 1002 ("Item does not exist.", "Customer does not
    # exist."), so the message tells which record is missing.
    message = error.message.lower()
    return "customer" in message and ("does not exist" in message or "invalid" in message)


class ZohoClient(ZohoOAuth):
    """Every Inventory call the gateway makes, typed; the token comes from ``ZohoOAuth``."""

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
        super().__init__(
            accounts_url=accounts_url,
            api_base=api_base,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
        )
        self.organization_id = organization_id
        self.budget = budget

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
                    zoho_call_count(endpoint=zoho_endpoint(path), timed_out=isinstance(exc, requests.Timeout))
                    raise error_from_exception(exc) from exc
            zoho_call_count(endpoint=zoho_endpoint(path), status_code=response.status_code)
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
                auth_failing_mark(error)
            logger.info("zoho %s %s failed: %s", method, path.split("?")[0], error.describe())
            if error.http_status == 429:
                raise self._limit_pause(budget, error)
            if error.retry_after:
                budget.pause(error.retry_after, reason=f"Zoho asked us to wait ({error.describe()})")
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _limit_pause(budget, error: ZohoError) -> ZohoWaitError:
        """A limit answer (HTTP 429) pauses every worker. Zoho documents no Retry-After for them, nor
        what each code means: without a Retry-After the pause is the shortest window (60 s), doubling
        while limit answers keep coming (``budget.limit_backoff``), never a day at once."""
        seconds = error.retry_after or budget.limit_backoff()
        meaning = LIMIT_CODE_MEANINGS.get(error.code, "")
        reason = f"Zoho answered a limit (HTTP 429, code {error.code}{meaning})"
        budget.pause(seconds, reason=reason)
        return ZohoWaitError(f"{reason}; paused {seconds:.0f} s", http_status=429, code=error.code, retry_after=seconds)

    # --- The organisation ------------------------------------------------------------------------

    def organization_time_zone(self) -> str | None:
        """The organisation's ``time_zone`` from ``GET /organizations`` (an IANA name such as
        ``Africa/Lagos``), or None when Zoho gives none we can use."""
        body = self._request("GET", "/organizations")
        for raw in body.get("organizations") or []:
            if isinstance(raw, dict) and str(raw.get("organization_id") or "") == str(self.organization_id):
                name = str(raw.get("time_zone") or "")
                try:
                    ZoneInfo(name)
                except (ZoneInfoNotFoundError, ValueError):
                    return None
                return name
        return None

    # --- Items ----------------------------------------------------------------------------------

    def items_page(self, *, page: int, per_page: int = ITEMS_PER_PAGE) -> ItemPage:
        body = self._request("GET", "/items", params={"page": page, "per_page": per_page})
        items = [item_from_zoho(raw) for raw in body.get("items") or [] if isinstance(raw, dict) and raw.get("item_id")]
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
        return item_from_zoho(self._request("GET", f"/items/{item_id}")["item"])

    # --- Lists ----------------------------------------------------------------------------------

    def _rows(self, path: str, *, names: tuple[str, ...], params: dict) -> Iterator[dict]:
        """Every row of a Zoho list, page after page (``page_context.has_more_page``), lazily: a caller
        that found what it looks for stops reading. The filters in ``params`` may narrow the list or
        not (Zoho Inventory does not document all of them): callers check every row themselves."""
        page = 1
        while True:
            body = self._request("GET", path, params={**params, "page": page, "per_page": LIST_PER_PAGE})
            rows = []
            for name in names:
                rows = body.get(name) or rows
            rows = [raw for raw in rows if isinstance(raw, dict)]
            yield from rows
            if not (body.get("page_context") or {}).get("has_more_page"):
                return
            if not rows:
                # "More pages" after an empty one would loop for ever; not knowing is not "none".
                raise ZohoTransientError(f"Zoho announced more rows of {path} after an empty page")
            page += 1

    # --- Contacts -------------------------------------------------------------------------------

    def contact_find_by_name(self, *, name: str) -> Contact | None:
        """The contact whose ``contact_name`` is exactly ``name`` (Zoho's filter narrows, we decide).

        We name our contacts after the partner and its customer (``orders/zoho_customers.py``), so a
        contact found here is never another partner's, whatever its email."""
        for raw in self._rows("/contacts", names=("contacts",), params={"contact_name": name}):
            if raw.get("contact_id") and str(raw.get("contact_name") or "") == name:
                return Contact(str(raw["contact_id"]), name, str(raw.get("email") or ""))
        return None

    def contact_create(self, *, name: str, person_name: str = "", email: str = "", phone: str = "") -> Contact:
        """A customer contact named ``name``; with an email or phone, a primary contact person
        (``person_name``, else ``name``) carries them."""
        payload: dict[str, Any] = {"contact_name": name, "contact_type": "customer"}
        if email or phone:
            first_name, _, last_name = (person_name or name).partition(" ")
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

    def _sales_order_first(self, *, params: dict, matches) -> SalesOrder | None:
        for raw in self._rows("/salesorders", names=("sales_orders", "salesorders"), params=params):
            if raw.get("salesorder_id") and matches(raw):
                return sales_order_from_zoho(raw)
        return None

    def sales_order_find_by_number(self, *, number: str) -> SalesOrder | None:
        """The sales order whose ``salesorder_number`` is exactly ``number``.

        Zoho documents the number as unique per sales order, so at most one exists. The filters sent
        (``salesorder_number``, ``search_text``) only narrow the list; every page is read until an
        exact match."""
        return self._sales_order_first(
            params={"salesorder_number": number, "search_text": number},
            matches=lambda raw: str(raw.get("salesorder_number") or "") == number,
        )

    def sales_order_find_by_reference(self, *, reference: str, customer_id: str = "") -> SalesOrder | None:
        """The sales order whose ``reference_number`` is exactly ``reference`` (and, when given, whose
        ``customer_id`` is ``customer_id``).

        Zoho Inventory does not document this filter (Zoho Books does) and it may match loosely or
        not at all, so every page is read (``page_context.has_more_page``) until an exact match."""
        return self._sales_order_first(
            params={"reference_number": reference},
            matches=lambda raw: (
                str(raw.get("reference_number") or "") == reference
                and (not customer_id or str(raw.get("customer_id") or "") == customer_id)
            ),
        )

    def sales_order_get(self, *, salesorder_id: str) -> SalesOrder:
        return sales_order_from_body(self._request("GET", f"/salesorders/{salesorder_id}"))

    def sales_order_create(
        self,
        *,
        customer_id: str,
        number: str = "",
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
        params = None
        if number:
            # Our number, not Zoho's next one: Zoho then refuses a second sales order with it.
            payload["salesorder_number"] = number
            params = {"ignore_auto_number_generation": "true"}
        try:
            body = self._request("POST", "/salesorders", params=params, json=payload)
        except ZohoPermanentError as exc:
            if _customer_unknown(exc):
                raise ZohoCustomerUnknownError(exc.message, http_status=exc.http_status, code=exc.code) from exc
            raise
        return sales_order_from_body(body)

    def sales_order_confirm(self, *, salesorder_id: str) -> None:
        self._request("POST", f"/salesorders/{salesorder_id}/status/confirmed")


def zoho_day_zone_refresh(client: ZohoClient) -> str | None:
    """Ask Zoho for the organisation's time zone once a day (the catalogue sync calls this); the
    budget's day follows it. A failure is logged and changes nothing: the day stays where it was."""
    known = cache.get(DAY_ZONE_CACHE_KEY)
    if known:
        return known
    try:
        name = client.organization_time_zone()
    except ZohoError as exc:
        logger.warning("zoho organisation time zone not read: %s", exc.describe())
        return None
    if name:
        cache.set(DAY_ZONE_CACHE_KEY, name, timeout=DAY_ZONE_CACHE_SECONDS)
        zoho_day_zone_forget()  # the other processes follow within a minute
    return name


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


__all__ = ["ZohoClient", "zoho_client", "zoho_day_zone_refresh"]
