"""ZOHO SANDBOX — a local, in-memory stand-in for Zoho's OAuth and Inventory APIs. Not Zoho.

``manage.py zoho_sandbox`` (and ``make run``) serve it so that the real client code runs on a laptop
and in tests: point ``ZOHO_ACCOUNTS_URL`` at ``http://127.0.0.1:8765`` and ``ZOHO_API_BASE`` at
``http://127.0.0.1:8765/inventory/v1``. It speaks the calls the gateway makes, with Zoho's shapes:

- ``POST /oauth/v2/token`` (refresh-token grant; a wrong refresh token gets HTTP 200 with ``error``;
  ``api_domain`` is the sandbox's own origin unless ``api_domain=`` says otherwise)
- ``GET /inventory/v1/items`` (paging), ``GET /inventory/v1/items/{id}``
- ``GET|POST /inventory/v1/contacts`` (``email`` and ``contact_name`` filters)
- ``GET /inventory/v1/salesorders`` paged like Zoho's lists (``page``, ``per_page`` up to 200,
  ``page_context.has_more_page``; ``reference_number``, ``salesorder_number`` and ``search_text``
  match loosely, "contains"),
  ``POST /inventory/v1/salesorders`` (the answer names the object ``sales_order``, as Zoho's
  documented create answer does; 400 code 1002 "Customer does not exist." for an unknown
  ``customer_id``; with ``?ignore_auto_number_generation=true`` the body's ``salesorder_number`` is
  kept, and a number already taken is refused with 400), ``GET /inventory/v1/salesorders/{id}`` (``salesorder``)
- ``POST /inventory/v1/salesorders/{id}/status/confirmed`` (with approvals on, ``approvals``, a draft
  goes to ``pending_approval`` and the confirm is refused) and ``…/status/void``

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

This module is the HTTP side: the token endpoint, the token check, the limits and the faults in
front of every call, the server and ``ZohoSandbox`` that runs it. What the sandbox holds (the demo
items among it) and how Inventory answers on it are ``sandbox_state.py``'s.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from integrations.zoho.sandbox_state import SandboxState

API_PREFIX = "/inventory/v1"
SANDBOX_REFRESH_TOKEN = "sandbox-refresh-token"


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
                        state.answer(method, path, query, body)
                if fault.get("status"):
                    with state.lock:
                        state.counts["faults"] += 1
                    return self._send(
                        int(fault["status"]),
                        {"code": int(fault.get("code", 1000)), "message": fault.get("message", "Internal error")},
                    )
            with state.lock:
                status, answer = state.answer(method, path, query, body)
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

    def sales_order_numbered(self, number: str) -> dict | None:
        with self.state.lock:
            found = [dict(so) for so in self.state.salesorders.values() if so["salesorder_number"] == number]
        return found[0] if found else None

    def contacts_named(self, name: str) -> list[dict]:
        with self.state.lock:
            return [dict(c) for c in self.state.contacts.values() if c["contact_name"] == name]

    def set_status(self, salesorder_id: str, status: str) -> None:
        """Staff change a sales order in Zoho (approve it, void it, invoice it)."""
        with self.state.lock:
            self.state.salesorders[salesorder_id]["status"] = status

    def delete_contact(self, contact_id: str) -> bool:
        """A contact vanishes, as when staff merge or delete it in Zoho."""
        with self.state.lock:
            return self.state.contacts.pop(contact_id, None) is not None

    def add_sales_order(self, *, reference: str, customer_id: str = "", number: str = "", notes: str = "") -> dict:
        """A sales order made by someone else (staff, another integration, the code before a deploy)."""
        with self.state.lock:
            so = {
                "salesorder_id": self.state.new_id(),
                "salesorder_number": number or f"SO-{len(self.state.salesorders) + 1:05d}",
                "reference_number": reference,
                "customer_id": customer_id,
                "date": date.today().isoformat(),
                "status": "confirmed",
                "line_items": [],
                "notes": notes,
                "custom_fields": [],
            }
            self.state.salesorders[so["salesorder_id"]] = so
            return dict(so)
