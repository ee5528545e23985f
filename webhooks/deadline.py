"""An attempt's hard deadline: from connect to the last byte read, whatever the receiver does.

``requests``' ``timeout=(connect, read)`` bounds each socket read, not their sum: a receiver that
sends its status line, headers or body one byte at a time keeps an attempt open for as long as it
likes. So every attempt runs under an ``AttemptDeadline``: the connections of the client's pools
(``DeadlineHTTPConnectionPool``, ``DeadlineHTTPSConnectionPool``) report each socket they open or
reuse to the deadline of the attempt running on their thread, and one watchdog thread shuts those
sockets down (``shutdown(SHUT_RDWR)``, which wakes a read blocked in another thread at once) when
the deadline passes. The attempt then ends with a timeout, within milliseconds of its deadline.

The deadline holds its own duplicate of each socket's descriptor, closed when the attempt ends, so
that a descriptor the connection closed and the process reused for another socket is never shut
down by mistake; and once the attempt has ended nothing is shut down any more (the connection may
go back to the pool for the next attempt).
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()  # .deadline: the AttemptDeadline of the attempt running on this thread


class AttemptDeadline:
    """The deadline of one attempt, ``seconds`` from now; use as a context manager on the thread that
    makes the attempt. ``expired`` tells afterwards whether the watchdog cut it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._ended = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.at

    def __enter__(self) -> AttemptDeadline:
        _current.deadline = self
        _watchdog.arm(self)
        return self

    def __exit__(self, *exc_info) -> None:
        _current.deadline = None
        with self._lock:
            self._ended = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    def watch(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed)."""
        if sock is None:
            return
        try:
            own = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
        except OSError:  # closed meanwhile: nothing to read from, nothing to cut
            return
        with self._lock:
            if not self._ended:
                self._sockets.append(own)
                own = None
        if own is not None:
            own.close()
            return
        if self.passed():
            self.expire()

    def expire(self) -> None:
        """The watchdog's call at the deadline: every socket of the attempt is shut down."""
        with self._lock:
            if self._ended:
                return
            self.expired = True
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the peer or the connection


class _Watchdog:
    """One daemon thread per process that expires deadlines in time order. An attempt that ended
    stays in the heap until its time and is then skipped (``expire`` does nothing)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, AttemptDeadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: AttemptDeadline) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
            deadline.expire()


_watchdog = _Watchdog()


def _watched(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class _DeadlineConnectionMixin:
    """A new socket is watched as soon as it exists (before the TLS handshake), a kept-alive one
    when the next request goes out on it."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watched(sock)
        return sock

    def request(self, *args, **kwargs):
        _watched(self.sock)
        return super().request(*args, **kwargs)


class DeadlineHTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class DeadlineHTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


class DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = DeadlineHTTPConnection


class DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = DeadlineHTTPSConnection


POOL_CLASSES = {"http": DeadlineHTTPConnectionPool, "https": DeadlineHTTPSConnectionPool}
