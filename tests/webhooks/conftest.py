"""Fixtures of the webhook tests: a real local HTTP receiver in a thread, a partner pointed at it with
a ``whsec_`` secret, events recorded through the real service, and a real Celery worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connections

from orders.models import Order
from partners.models import Partner, WebhookSecret
from partners.services import secret_generate
from tests.factories import OrderFactory
from tests.zoho_fixtures import start_celery_worker
from webhooks import outbox
from webhooks.models import WebhookLog
from webhooks.outbox import event_record


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def event_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout tests) breaks the pipe; that is expected


class Receiver:
    """Records every request; answers with the scripted ``Answer``s in turn, then ``default``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self.decide: Callable[[Received], Answer | None] | None = None
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver.received.append(request)
                    answer = receiver.decide(request) if receiver.decide else None
                    if answer is None:
                        answer = receiver.script.pop(0) if receiver.script else receiver.default
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def do_GET(self):  # noqa: N802 - the target of a redirect
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), b""))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format, *args):  # noqa: A002
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/webhooks/t2mobile"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def ids(self) -> list[str]:
        with self._lock:
            return [r.event_id for r in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"receiver got {len(self.received)} requests, expected {count}")


@pytest.fixture(autouse=True)
def fresh_direct_enqueue_budget(monkeypatch):
    """Each test starts with this process's per-second budget of directly queued events unspent (the
    default partner keeps its pk from test to test, and tests a second apart would share it)."""
    monkeypatch.setattr(outbox, "_direct_enqueue_budget", outbox._DirectEnqueueBudget())


@contextmanager
def serving_receiver():
    """A ``Receiver`` answering on its port for the block, shut down after it."""
    receiver = Receiver()
    receiver._thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def receiver():
    with serving_receiver() as receiver:
        yield receiver


@pytest.fixture
def webhook_secret() -> str:
    return secret_generate()


@pytest.fixture
def hooked_partner(partner, receiver, webhook_secret) -> Partner:
    """The partner with its webhook URL on the local receiver and one active secret."""
    partner.webhook_url = receiver.url
    partner.save()
    WebhookSecret.objects.create(partner=partner, secret=webhook_secret)
    return partner


def make_order(partner: Partner, order_id: str | None = None) -> Order:
    """A FULFILLED order with a licence, for events to be about."""
    fields = {"order_id": order_id} if order_id else {}
    return OrderFactory(partner=partner, status=Order.Status.FULFILLED, activation_reference="LIC-7QK2-99XA", **fields)


def record(partner: Partner, event_type: str = "ORDER_FULFILLED", order: Order | None = None) -> WebhookLog:
    """An event written the way the order flow writes it."""
    order = order or make_order(partner)
    data = {"orderId": order.order_id, "status": order.status, "activationReference": order.activation_reference}
    return event_record(partner=partner, event_type=event_type, data=data, order_pk=order.pk if order else None)


@contextmanager
def running_worker():
    """A real Celery worker (threads) consuming the ``webhooks`` and ``default`` queues of the test
    Redis database, in this process, so it uses the test PostgreSQL database."""
    try:
        with start_celery_worker(
            ("webhooks", "default"), pool="threads", concurrency=4, shutdown_timeout=20, loglevel="WARNING"
        ) as worker:
            yield worker
    finally:
        connections.close_all()


@pytest.fixture
def webhook_worker(transactional_db):
    with running_worker() as worker:
        yield worker


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")
