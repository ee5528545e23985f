"""A real local TCP receiver that answers as slowly or as strangely as a test scripts it: the status
line and headers one byte at a time, a slow body, a body that never ends, garbage at once. It keeps
the requests it got (their ``webhook-id``, headers and body, so a test can verify their signatures),
the connections open at once, and when each connection was hung up on. ``answer_for`` chooses an
answer per request (by its event type, say) instead of one for all.

Every way of answering stops by itself after ``give_up_after`` seconds (and as soon as the client
hangs up), so that a client without a hard deadline fails a test in seconds instead of hanging it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Answering = Callable[[], Iterator[tuple[bytes, float]]]  # (bytes to send, then seconds to wait) pieces


def slow_headers(*, every: float = 1.0, status: bytes = b"200 OK") -> Answering:
    """The status line and headers one byte every ``every`` seconds, then a short body."""
    answer = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"

    def pieces():
        for byte in answer:
            yield bytes([byte]), every
        yield b'{"ok":true}', 0

    return pieces


def slow_body(*, status: bytes = b"200 OK", every: float = 0.25, length: int = 1000) -> Answering:
    """The headers at once, then a body of ``length`` bytes, one every ``every`` seconds."""

    def pieces():
        yield b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n", 0
        for _ in range(length):
            yield b"a", every

    return pieces


def endless_body(*, status: bytes = b"200 OK", piece: bytes = b"\x00tick\xff ", every: float = 0.05) -> Answering:
    """The headers at once, then a chunked body that never ends: ``piece`` every ``every`` seconds."""
    chunk = f"{len(piece):x}".encode() + b"\r\n" + piece + b"\r\n"

    def pieces():
        yield b"HTTP/1.1 " + status + b"\r\nTransfer-Encoding: chunked\r\n\r\n", 0
        while True:
            yield chunk, every

    return pieces


def at_once(*, body: bytes, status: bytes = b"200 OK") -> Answering:
    """The whole answer at once: ``body`` (NUL bytes, invalid UTF-8, whatever) with its length."""

    def pieces():
        yield b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body, 0

    return pieces


@dataclass
class Request:
    event_id: str
    arrived: float  # time.monotonic()
    hung_up: float | None = None  # when the client closed the connection, as the receiver saw it
    headers: dict = field(default_factory=dict)  # names in lower case
    body: bytes = b""


class TrickleReceiver:
    def __init__(
        self,
        answering: Answering | None = None,
        *,
        answer_for: Callable[[Request], Answering] | None = None,
        give_up_after: float = 12.0,
    ):
        if (answering is None) == (answer_for is None):
            raise TypeError("give one answering for every request, or answer_for to choose per request")
        self.answering = answering
        self.answer_for = answer_for
        self.give_up_after = give_up_after
        self.requests: list[Request] = []
        self.open_connections = 0
        self.most_open_at_once = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/webhooks/t2mobile"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TrickleReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._closing.set()
        self._thread.join(5)
        self._server.close()

    def ids(self) -> list[str]:
        with self._lock:
            return [request.event_id for request in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"receiver got {len(self.requests)} requests, expected {count}")

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.open_connections += 1
            self.most_open_at_once = max(self.most_open_at_once, self.open_connections)
        request = None
        try:
            request = self._read_request(conn)
            if request is None:
                return
            given_up = time.monotonic() + self.give_up_after
            answering = self.answer_for(request) if self.answer_for else self.answering
            for data, wait in answering():
                conn.sendall(data)
                if self._wait_for_hang_up(conn, wait) or time.monotonic() >= given_up or self._closing.is_set():
                    break
        except OSError:
            pass  # the client hung up mid-send
        finally:
            if request is not None and request.hung_up is None:
                request.hung_up = time.monotonic()
            with self._lock:
                self.open_connections -= 1
            conn.close()

    def _read_request(self, conn: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        request = Request(
            event_id=headers.get("webhook-id", ""), arrived=time.monotonic(), headers=headers, body=body[:length]
        )
        with self._lock:
            self.requests.append(request)
        return request

    def _wait_for_hang_up(self, conn: socket.socket, seconds: float) -> bool:
        """Wait ``seconds``; True as soon as the client closes its side (a read sees the end)."""
        until = time.monotonic() + seconds
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return False
            conn.settimeout(min(left, 0.05))
            try:
                if conn.recv(1) == b"":
                    return True
            except TimeoutError:
                pass
            except OSError:
                return True
            finally:
                conn.settimeout(None)
