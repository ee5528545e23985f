"""ZOHO SANDBOX — a local, in-memory stand-in for Zoho's OAuth and Inventory APIs. Not Zoho.

``manage.py zoho_sandbox`` (and ``make run``) serve it so that the real client code runs on a laptop
and in tests: point ``ZOHO_ACCOUNTS_URL`` at ``http://127.0.0.1:8765`` and ``ZOHO_API_BASE`` at
``http://127.0.0.1:8765/inventory/v1``. It speaks the calls the gateway makes, with Zoho's shapes:

- ``POST /oauth/v2/token`` (refresh-token grant; a wrong refresh token gets HTTP 200 with ``error``;
  ``api_domain`` is the sandbox's own origin unless ``api_domain=`` says otherwise)
- ``GET /inventory/v1/items`` (paging), ``GET /inventory/v1/items/{id}``
- ``GET|POST /inventory/v1/contacts`` (``email`` and ``contact_name`` filters)
- ``GET /inventory/v1/salesorders`` paged like Zoho's lists (``page``, ``per_page`` up to 200,
  ``page_context.has_more_page``; ``reference_number`` matches loosely, "contains"),
  ``POST /inventory/v1/salesorders`` (the answer names the object ``sales_order``, as Zoho's
  documented create answer does; 400 code 1002 "Customer does not exist." for an unknown
  ``customer_id``), ``GET /inventory/v1/salesorders/{id}`` (``salesorder``)
- ``POST /inventory/v1/salesorders/{id}/status/confirmed``

There is no ``PUT``: the gateway never updates a sales order. Contacts can vanish as they do in Zoho
when staff merge or delete one: ``DELETE /sandbox/contacts/{id}`` (or ``delete_contact``), and every
restart forgets them all; ids never repeat across restarts, so a cached id of an earlier run is
unknown, never somebody else's.

Like Zoho it enforces a per-organisation rate limit (``rate_limit`` calls per ``window`` seconds,
sliding), a cap on calls in flight and optionally a daily cap, answering HTTP 429 with Zoho's codes
(44 per minute, 1070 in flight, 45 daily) and, as Zoho documents, no ``Retry-After``; it can also fail a
share of calls (``fail_rate``) or the next N calls (``POST /sandbox/faults``). ``GET /sandbox/state``
reports what it holds and how many calls it answered and refused; ``POST /sandbox/reset`` empties it.
All state is in memory and lost on exit.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from collections import Counter, deque
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

API_PREFIX = "/inventory/v1"
SANDBOX_REFRESH_TOKEN = "sandbox-refresh-token"

DEMO_ITEMS = (
    {
        "item_id": "4815000000044208",
        "name": "Zoho Mail Lite",
        "sku": "ZM-LITE",
        "description": "Business email, 5 GB per user",
        "rate": 1500.0,
        "status": "active",
        "unit": "user",
    },
    {
        "item_id": "4815000000044220",
        "name": "Zoho Workplace Standard",
        "sku": "ZW-STD",
        "description": "Mail, office suite and chat, per user",
        "rate": 3000.0,
        "status": "active",
        "unit": "user",
    },
    {
        "item_id": "4815000000044232",
        "name": "Norton 360 Standard",
        "sku": "N360-STD",
        "description": "Antivirus and VPN for one device",
        "rate": 2500.0,
        "status": "active",
        "unit": "device",
    },
    {
        "item_id": "4815000000044244",
        "name": "Legacy Backup Plan",
        "sku": "LBP-OLD",
        "description": "No longer sold",
        "rate": 900.0,
        "status": "inactive",
        "unit": "device",
    },
)


class SandboxState:
    def __init__(
        self,
        *,
        rate_limit: int,
        window: float,
        max_inflight: int,
        fail_rate: float,
        seed: int | None,
        refresh_token: str,
        api_domain: str = "",
        daily_limit: int = 0,
    ):
        self.lock = threading.Lock()
        self.api_domain = api_domain
        self.daily_limit = daily_limit  # calls answered in this run; 0: none
        self.rate_limit = rate_limit
        self.window = window
        self.max_inflight = max_inflight
        self.fail_rate = fail_rate
        self.refresh_token = refresh_token
        self.random = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        self.items = {item["item_id"]: dict(item) for item in DEMO_ITEMS}
        self.contacts: dict[str, dict] = {}
        self.salesorders: dict[str, dict] = {}
        self.tokens: set[str] = set()
        self.recent: deque[float] = deque()
        self.inflight = 0
        self.counts: Counter[str] = Counter()
        self.faults: list[dict] = []
        # Zoho-like 16-digit ids that differ from one start to the next (by the millisecond).
        self.next_id = 4815 * 10**12 + (time.time_ns() // 10**6 % 10**7) * 10**4

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def snapshot(self) -> dict:
        return {
            "sandbox": True,
            "items": len(self.items),
            "contacts": len(self.contacts),
            "salesorders": len(self.salesorders),
            "salesordersByReference": dict(Counter(so["reference_number"] for so in self.salesorders.values())),
            "calls": dict(self.counts),
        }


class _Handler(BaseHTTPRequestHandler):
    server: _SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed
    # ACK of the headers on a kept-alive connection: ~40 ms added to every call.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing -------------------------------------------------------------------------------

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        content_type = self.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" in content_type:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if "JSONString" in form:
                return json.loads(form["JSONString"])
            return form
        try:
            body = json.loads(raw)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        state = self.server.state
        body = self._body()
        if url.path == "/oauth/v2/token" and method == "POST":
            return self._token(body or query)
        if url.path == "/sandbox/state":
            with state.lock:
                return self._send(200, state.snapshot())
        if url.path == "/sandbox/reset" and method == "POST":
            with state.lock:
                state.reset()
            return self._send(200, {"code": 0, "message": "sandbox reset"})
        match = re.fullmatch(r"/sandbox/contacts/(\w+)", url.path)
        if match and method == "DELETE":
            with state.lock:
                gone = state.contacts.pop(match.group(1), None)
            if gone is None:
                return self._send(404, {"code": 1002, "message": "Contact does not exist."})
            return self._send(200, {"code": 0, "message": "The contact has been deleted (sandbox)."})
        if url.path == "/sandbox/faults" and method == "POST":
            with state.lock:
                state.faults.append(body)
            return self._send(200, {"code": 0, "message": "fault queued"})
        if not url.path.startswith(API_PREFIX):
            return self._send(404, {"code": 5, "message": "Invalid URL Passed"})
        self._api(method, url.path[len(API_PREFIX) :], query, body)

    def _token(self, form: dict) -> None:
        state = self.server.state
        with state.lock:
            state.counts["token"] += 1
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != state.refresh_token:
                # Zoho answers a bad grant with HTTP 200 and an error field.
                return self._send(200, {"error": "invalid_code"})
            token = "1000." + secrets.token_hex(16) + "." + secrets.token_hex(16)
            state.tokens.add(token)
        # Its own origin, as the client reached it (Zoho answers the API host of the data centre).
        host, port = self.server.server_address[:2]
        api_domain = state.api_domain or f"http://{self.headers.get('Host') or f'{host}:{port}'}"
        self._send(200, {"access_token": token, "api_domain": api_domain, "token_type": "Bearer", "expires_in": 3600})

    # --- the API --------------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict, body: dict) -> None:
        state = self.server.state
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Zoho-oauthtoken ").strip()
        now = time.monotonic()
        with state.lock:
            if token not in state.tokens:
                state.counts["unauthorised"] += 1
                return self._send(401, {"code": 57, "message": "You are not authorized to perform this operation"})
            while state.recent and state.recent[0] <= now - state.window:
                state.recent.popleft()
            # Zoho's limit answers as documented: HTTP 429, a code per limit, no Retry-After header.
            if state.daily_limit and state.counts["api"] >= state.daily_limit:
                state.counts["throttled"] += 1
                return self._send(429, {"code": 45, "message": "You have reached the maximum API calls per day."})
            if len(state.recent) >= state.rate_limit:
                state.counts["throttled"] += 1
                return self._send(429, {"code": 44, "message": "You have made too many requests continuously."})
            if state.inflight >= state.max_inflight:
                state.counts["throttled"] += 1
                return self._send(429, {"code": 1070, "message": "Maximum concurrent API call limit reached."})
            state.recent.append(now)
            state.inflight += 1
            state.counts["api"] += 1
            fault = self._take_fault(method, path)
            if fault is None and state.fail_rate and state.random.random() < state.fail_rate:
                fault = {"status": 503, "code": 1000, "message": "Service temporarily unavailable (sandbox)"}
        try:
            if fault is not None:
                if fault.get("delay"):
                    time.sleep(float(fault["delay"]))
                if fault.get("after"):
                    # The call takes effect, but the caller sees a failure (a lost or timed-out answer).
                    with state.lock:
                        self._route(method, path, query, body)
                if fault.get("status"):
                    with state.lock:
                        state.counts["faults"] += 1
                    return self._send(
                        int(fault["status"]),
                        {"code": int(fault.get("code", 1000)), "message": fault.get("message", "Internal error")},
                    )
            with state.lock:
                status, answer = self._route(method, path, query, body)
                state.counts[f"{method} {re.sub(r'/[0-9]+', '/{id}', path)}"] += 1
            self._send(status, answer)
        finally:
            with state.lock:
                state.inflight -= 1

    def _take_fault(self, method: str, path: str) -> dict | None:
        for fault in self.server.state.faults:
            if fault.get("method", method) == method and fault.get("path_contains", "") in path:
                fault["count"] = int(fault.get("count", 1)) - 1
                if fault["count"] <= 0:
                    self.server.state.faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _page(query: dict, name: str, rows: list[dict]) -> dict:
        """One page of a list, the way Zoho pages its lists (``page``, ``per_page`` ≤ 200)."""
        try:
            page = max(1, int(query.get("page", 1)))
            per_page = max(1, min(200, int(query.get("per_page", 200))))
        except ValueError:
            page, per_page = 1, 200
        chunk = rows[(page - 1) * per_page : page * per_page]
        return {
            "code": 0,
            "message": "success",
            name: chunk,
            "page_context": {"page": page, "per_page": per_page, "has_more_page": page * per_page < len(rows)},
        }

    def _route(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        state = self.server.state
        if method == "GET" and path == "/items":
            page = max(1, int(query.get("page", 1)))
            per_page = max(1, min(200, int(query.get("per_page", 200))))
            items = sorted(state.items.values(), key=lambda i: i["item_id"])
            chunk = items[(page - 1) * per_page : page * per_page]
            return 200, {
                "code": 0,
                "message": "success",
                "items": chunk,
                "page_context": {"page": page, "per_page": per_page, "has_more_page": page * per_page < len(items)},
            }
        match = re.fullmatch(r"/items/(\w+)", path)
        if method == "GET" and match:
            item = state.items.get(match.group(1))
            if item is None:
                return 404, {"code": 1002, "message": "Item does not exist."}
            return 200, {"code": 0, "message": "success", "item": item}
        if path == "/contacts" and method == "GET":
            email = query.get("email", "").lower()
            name = query.get("contact_name", "")
            found = [
                c
                for c in state.contacts.values()
                if (not email or c["email"].lower() == email) and (not name or c["contact_name"] == name)
            ]
            return 200, self._page(query, "contacts", found)
        if path == "/contacts" and method == "POST":
            persons = body.get("contact_persons") or [{}]
            if not body.get("contact_name"):
                return 400, {"code": 4, "message": "Contact name is required."}
            contact = {
                "contact_id": state.new_id(),
                "contact_name": body["contact_name"],
                "contact_type": body.get("contact_type", "customer"),
                "email": persons[0].get("email", ""),
                "phone": persons[0].get("phone", ""),
            }
            state.contacts[contact["contact_id"]] = contact
            return 201, {"code": 0, "message": "The contact has been added.", "contact": contact}
        if path == "/salesorders" and method == "GET":
            reference = query.get("reference_number")
            # Like Zoho's search, the filter matches loosely ("contains"); callers must check.
            found = [so for so in state.salesorders.values() if not reference or reference in so["reference_number"]]
            return 200, self._page(query, "salesorders", found)
        if path == "/salesorders" and method == "POST":
            if str(body.get("customer_id")) not in state.contacts:
                # Zoho's "does not exist" answer (code 1002), as for a contact merged or deleted.
                return 400, {"code": 1002, "message": "Customer does not exist."}
            lines = body.get("line_items") or []
            for line in lines:
                item = state.items.get(str(line.get("item_id")))
                if item is None:
                    return 400, {"code": 1002, "message": "Item does not exist."}
            number = f"SO-{len(state.salesorders) + 1:05d}"
            so = {
                "salesorder_id": state.new_id(),
                "salesorder_number": number,
                "reference_number": str(body.get("reference_number") or ""),
                "customer_id": body["customer_id"],
                "date": body.get("date") or date.today().isoformat(),
                "status": "draft",
                "line_items": lines,
                "notes": body.get("notes", ""),
                "custom_fields": body.get("custom_fields") or [],
            }
            state.salesorders[so["salesorder_id"]] = so
            return 201, {"code": 0, "message": "Sales Order has been created.", "sales_order": so}
        match = re.fullmatch(r"/salesorders/(\w+)/status/confirmed", path)
        if method == "POST" and match:
            so = state.salesorders.get(match.group(1))
            if so is None:
                return 404, {"code": 1002, "message": "Sales order does not exist."}
            so["status"] = "confirmed"
            return 200, {"code": 0, "message": "Sales Order has been marked as confirmed."}
        match = re.fullmatch(r"/salesorders/(\w+)", path)
        if match and method == "GET":
            so = state.salesorders.get(match.group(1))
            if so is None:
                return 404, {"code": 1002, "message": "Sales order does not exist."}
            return 200, {"code": 0, "message": "success", "salesorder": so}
        return 404, {"code": 5, "message": "Invalid URL Passed"}


class _SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state: SandboxState, verbose: bool):
        self.state = state
        self.verbose = verbose
        super().__init__(address, _Handler)


class ZohoSandbox:
    """The SANDBOX server; ``start()`` runs it in a background thread (tests, benchmark)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        rate_limit: int = 100,
        window: float = 60.0,
        max_inflight: int = 10,
        fail_rate: float = 0.0,
        seed: int | None = None,
        refresh_token: str = SANDBOX_REFRESH_TOKEN,
        api_domain: str = "",
        daily_limit: int = 0,
        verbose: bool = False,
    ):
        self.state = SandboxState(
            rate_limit=rate_limit,
            window=window,
            max_inflight=max_inflight,
            fail_rate=fail_rate,
            seed=seed,
            refresh_token=refresh_token,
            api_domain=api_domain,
            daily_limit=daily_limit,
        )
        self.server = _SandboxServer((host, port), self.state, verbose)
        self.host, self.port = self.server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def accounts_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    def start(self) -> ZohoSandbox:
        self._thread = threading.Thread(target=self.server.serve_forever, name="zoho-sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(
        self,
        *,
        count: int = 1,
        status: int = 503,
        code: int = 1000,
        path_contains: str = "",
        method: str | None = None,
        message: str = "Internal error",
        delay: float = 0,
        after: bool = False,
    ) -> None:
        """Fail the next ``count`` matching calls; ``after``: carry the call out, then fail the answer;
        ``status=0`` with a ``delay``: only slow the call down."""
        fault = {
            "count": count,
            "status": status,
            "code": code,
            "path_contains": path_contains,
            "message": message,
            "delay": delay,
            "after": after,
        }
        if method:
            fault["method"] = method
        with self.state.lock:
            self.state.faults.append(fault)

    def sales_orders_for(self, reference: str) -> list[dict]:
        with self.state.lock:
            return [dict(so) for so in self.state.salesorders.values() if so["reference_number"] == reference]

    def delete_contact(self, contact_id: str) -> bool:
        """A contact vanishes, as when staff merge or delete it in Zoho."""
        with self.state.lock:
            return self.state.contacts.pop(contact_id, None) is not None

    def add_sales_order(self, *, reference: str, customer_id: str = "") -> dict:
        """A sales order made by someone else (staff, another integration), for paging tests."""
        with self.state.lock:
            so = {
                "salesorder_id": self.state.new_id(),
                "salesorder_number": f"SO-{len(self.state.salesorders) + 1:05d}",
                "reference_number": reference,
                "customer_id": customer_id,
                "date": date.today().isoformat(),
                "status": "confirmed",
                "line_items": [],
                "notes": "",
                "custom_fields": [],
            }
            self.state.salesorders[so["salesorder_id"]] = so
            return dict(so)
