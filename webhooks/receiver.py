"""A local webhook receiver for ``make run`` and demos: verifies each delivery with the
``standardwebhooks`` library, prints the verified event, and answers 400 to a bad signature.

It is what T2Mobile's side looks like, in a few lines; see docs/webhooks.md.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY_BYTES = 1024 * 1024


def receiver_server(*, host: str, port: int, secret: str, on_event: Callable[[str], None]) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) that verifies POSTs signed with ``secret``."""
    verifier = Webhook(secret)
    seen_lock = threading.Lock()
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "T2MobileReceiver/1"
        disable_nagle_algorithm = True  # else the body waits ~40 ms for the delayed ACK of the headers

        def do_POST(self):  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                return self._answer(413, {"error": "body too large"})
            body = self.rfile.read(length)
            try:
                event = verifier.verify(body, dict(self.headers.items()))
            except WebhookVerificationError as exc:
                on_event(f"REJECTED {self.headers.get('webhook-id', '-')}: {exc}")
                return self._answer(400, {"error": str(exc)})
            event_id = self.headers["webhook-id"]
            with seen_lock:  # deduplicate by webhook-id, as receivers should
                duplicate = event_id in seen
                seen.add(event_id)
            data = event.get("data") or {}
            note = " (duplicate, ignored)" if duplicate else ""
            on_event(f"verified {event.get('type')} {event_id} orderId={data.get('orderId', '-')}{note}")
            return self._answer(200, {"received": True})

        def _answer(self, status: int, payload: dict) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format, *args):  # noqa: A002 - quiet: events are printed by on_event
            pass

    return ThreadingHTTPServer((host, port), Handler)
