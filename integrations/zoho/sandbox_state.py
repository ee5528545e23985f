"""ZOHO SANDBOX — what the local stand-in for Zoho holds, and how its Inventory API answers. Not Zoho.

``SandboxState`` is the sandbox's memory: the demo items (``DEMO_ITEMS``, the one catalogue of
``make run``, the benchmarks and the tests), the contacts and sales orders made since it started,
the access tokens it issued, its call counts and rate-limit window, and the faults queued for the
next calls. ``SandboxState.answer`` gives Zoho Inventory's answer to one call, with Zoho's
documented shapes; the HTTP server in ``sandbox.py`` checks the token, the limits and the faults
before it asks. All of it is in memory and lost on exit.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter, deque
from datetime import date

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
    """The sandbox's memory; every reader and writer holds ``lock``."""

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
        self.approvals = False  # an organisation with sales order approvals on
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

    def answer(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        """Zoho Inventory's answer to one call (``path`` after ``/inventory/v1``); the caller holds ``lock``."""
        if method == "GET" and path == "/items":
            page = max(1, int(query.get("page", 1)))
            per_page = max(1, min(200, int(query.get("per_page", 200))))
            items = sorted(self.items.values(), key=lambda i: i["item_id"])
            chunk = items[(page - 1) * per_page : page * per_page]
            return 200, {
                "code": 0,
                "message": "success",
                "items": chunk,
                "page_context": {"page": page, "per_page": per_page, "has_more_page": page * per_page < len(items)},
            }
        match = re.fullmatch(r"/items/(\w+)", path)
        if method == "GET" and match:
            item = self.items.get(match.group(1))
            if item is None:
                return 404, {"code": 1002, "message": "Item does not exist."}
            return 200, {"code": 0, "message": "success", "item": item}
        if path == "/contacts" and method == "GET":
            email = query.get("email", "").lower()
            name = query.get("contact_name", "")
            found = [
                c
                for c in self.contacts.values()
                if (not email or c["email"].lower() == email) and (not name or c["contact_name"] == name)
            ]
            return 200, _page(query, "contacts", found)
        if path == "/contacts" and method == "POST":
            persons = body.get("contact_persons") or [{}]
            if not body.get("contact_name"):
                return 400, {"code": 4, "message": "Contact name is required."}
            contact = {
                "contact_id": self.new_id(),
                "contact_name": body["contact_name"],
                "contact_type": body.get("contact_type", "customer"),
                "email": persons[0].get("email", ""),
                "phone": persons[0].get("phone", ""),
            }
            self.contacts[contact["contact_id"]] = contact
            return 201, {"code": 0, "message": "The contact has been added.", "contact": contact}
        if path == "/salesorders" and method == "GET":
            # Like Zoho's search, each filter matches loosely ("contains"); callers must check.
            reference = query.get("reference_number", "")
            number = query.get("salesorder_number", "")
            text = query.get("search_text", "")
            found = [
                so
                for so in self.salesorders.values()
                if reference in so["reference_number"]
                and number in so["salesorder_number"]
                and (text in so["salesorder_number"] or text in so["reference_number"])
            ]
            return 200, _page(query, "salesorders", found)
        if path == "/salesorders" and method == "POST":
            if str(body.get("customer_id")) not in self.contacts:
                # Zoho's "does not exist" answer (code 1002), as for a contact merged or deleted.
                return 400, {"code": 1002, "message": "Customer does not exist."}
            lines = body.get("line_items") or []
            for line in lines:
                item = self.items.get(str(line.get("item_id")))
                if item is None:
                    return 400, {"code": 1002, "message": "Item does not exist."}
            number = f"SO-{len(self.salesorders) + 1:05d}"
            if query.get("ignore_auto_number_generation") == "true" and body.get("salesorder_number"):
                number = str(body["salesorder_number"])
                if any(so["salesorder_number"] == number for so in self.salesorders.values()):
                    # Zoho keeps sales order numbers unique. The code and wording of its refusal are
                    # not on a page we can read: this one is the sandbox's, and the gateway decides
                    # by looking the number up, not by the code.
                    return 400, {"code": 1001, "message": f'Sales Order "{number}" already exists.'}
            so = {
                "salesorder_id": self.new_id(),
                "salesorder_number": number,
                "reference_number": str(body.get("reference_number") or ""),
                "customer_id": body["customer_id"],
                "date": body.get("date") or date.today().isoformat(),
                "status": "draft",
                "line_items": lines,
                "notes": body.get("notes", ""),
                "custom_fields": body.get("custom_fields") or [],
            }
            self.salesorders[so["salesorder_id"]] = so
            return 201, {"code": 0, "message": "Sales Order has been created.", "sales_order": so}
        match = re.fullmatch(r"/salesorders/(\w+)/status/(confirmed|void)", path)
        if method == "POST" and match:
            so = self.salesorders.get(match.group(1))
            if so is None:
                return 404, {"code": 1002, "message": "Sales order does not exist."}
            if match.group(2) == "void":
                so["status"] = "void"
                return 200, {"code": 0, "message": "Sales Order status has been changed to Void."}
            if self.approvals and so["status"] in ("draft", "pending_approval"):
                # An organisation with approvals on: the sales order goes for approval instead. The
                # code and wording of Zoho's refusal are the sandbox's own (no page of Zoho's we can
                # read gives them); the gateway reads the sales order again rather than the code.
                so["status"] = "pending_approval"
                return 400, {"code": 36001, "message": "This sales order has to be approved before it is confirmed."}
            if so["status"] == "void":
                return 400, {"code": 36002, "message": "A void sales order cannot be confirmed."}
            so["status"] = "confirmed"
            return 200, {"code": 0, "message": "Sales Order has been marked as confirmed."}
        match = re.fullmatch(r"/salesorders/(\w+)", path)
        if match and method == "GET":
            so = self.salesorders.get(match.group(1))
            if so is None:
                return 404, {"code": 1002, "message": "Sales order does not exist."}
            return 200, {"code": 0, "message": "success", "salesorder": so}
        return 404, {"code": 5, "message": "Invalid URL Passed"}


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
