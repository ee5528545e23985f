"""A partner's endpoint that is slow and rude within what HTTP allows, on a raw socket: for the
events it is told to, it sends its status line and headers one byte every few seconds (never
finishing in time); for the others it answers 200 at once with a body holding NUL bytes and invalid
UTF-8. It records every request it received and when, and verifies each one's Standard Webhooks
signature with the partner's secret."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass

from standardwebhooks import Webhook

RUDE_BODY = b'{"ok":true}\x00\x00\xff\xfe junk \x00'


@dataclass
class RudeRequest:
    at: float  # time.time() when the body had arrived
    headers: dict
    body: bytes

    def event(self, webhook: Webhook) -> dict:
        return webhook.verify(self.body, self.headers)


class RudeReceiver:
    def __init__(self, secret: str, *, trickle_types: set[str], byte_every: float = 2.0, trickle_for: float = 40.0):
        self.webhook = Webhook(secret)
        self.trickle_types = trickle_types
        self.byte_every = byte_every
        self.trickle_for = trickle_for
        self.requests: list[RudeRequest] = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/hooks"
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        self._sock.close()

    def events(self) -> list[dict]:
        """Every request's verified event, in arrival order (a second delivery appears twice)."""
        with self._lock:
            received = list(self.requests)
        return [request.event(self.webhook) for request in received]

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(60)
            try:
                while True:  # keep-alive: one request after another on the connection
                    request = self._read(connection)
                    if request is None:
                        return
                    with self._lock:
                        self.requests.append(request)
                    event_type = json.loads(request.body).get("type", "")
                    if event_type in self.trickle_types:
                        self._trickle(connection)
                        return
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                        + f"Content-Length: {len(RUDE_BODY)}\r\n\r\n".encode()
                        + RUDE_BODY
                    )
            except OSError:
                return

    def _read(self, connection: socket.socket) -> RudeRequest | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                return None
            body += chunk
        return RudeRequest(at=time.time(), headers=headers, body=body[:length])

    def _trickle(self, connection: socket.socket) -> None:
        """The status line and headers, a byte at a time, for longer than any attempt may last."""
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"a" * 1000
        ends = time.monotonic() + self.trickle_for
        for byte in answer:
            if time.monotonic() > ends or self._stopped.is_set():
                return
            connection.sendall(bytes([byte]))
            time.sleep(self.byte_every)
