# ruff: noqa: F811  (pytest fixtures imported from other test modules are used as arguments)
"""Fault injection against the real pieces: PostgreSQL cut off behind a TCP proxy while a gunicorn
process serves the API, Zoho answering 503 for a stretch, the partner's receiver down for a stretch,
a scan of every log line of a whole order for personal data and secrets, and the production
settings and the repository checked for what must never ship.

Every fault is a real one (refused and reset connections, HTTP errors from local servers); nothing
is mocked. Time is compressed by patching the retry schedules, as the other worker tests do.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.db import connection, transaction

from core.logging import ContextFilter
from orders import provisioning
from orders.models import Fulfilment, IdempotencyRecord, Order
from scripts.procfile import process_argv
from tests.conftest import order_payload, settled
from tests.conftest import place_order as place
from tests.webhooks.conftest import (  # noqa: F401
    Answer,
    Received,
    hooked_partner,
    make_order,
    receiver,
    record,
    wait_until,
    webhook_secret,
    webhook_worker,
)
from tests.zoho_fixtures import (  # noqa: F401
    free_port,
    provisioning_worker,
    start_celery_worker,
    wait_for,
    zoho_sandbox,
)
from webhooks.models import WebhookLog
from webhooks.signing import standard_signature

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


# --- 1. PostgreSQL unreachable ----------------------------------------------------------------------


class PostgresProxy:
    """A TCP forwarder in front of PostgreSQL that a test can cut and restore on the same port.

    ``cut()`` closes the listening socket (new connections are refused) and every open connection
    (the client sees the server vanish; PostgreSQL sees its client vanish and rolls back whatever
    transaction was open). ``cut_when_client_sends(marker)`` does the same the moment a client sends
    bytes containing ``marker`` (an SQL fragment), without forwarding those bytes.
    """

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)):
        self.upstream = upstream
        self.port = free_port()
        self.marker: bytes | None = None
        self.marker_seen = threading.Event()
        self.client_bytes = bytearray()  # what clients sent since the marker was set
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="pg-proxy", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            doomed, self._open = self._open, set()
        for sock in ([listener] if listener else []) + list(doomed):
            _close(sock)

    def cut_when_client_sends(self, marker: bytes) -> None:
        self.marker_seen.clear()
        self.client_bytes.clear()
        self.marker = marker

    def _accept(self, listener: socket.socket) -> None:
        while True:
            with self._lock:
                if self._listener is not listener:
                    return
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client and self.marker is not None:
                    if self.marker in data:
                        self.marker = None
                        self.marker_seen.set()
                        self.cut()
                        return
                    self.client_bytes.extend(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@dataclass
class WebThroughProxy:
    url: str
    proxy: PostgresProxy
    output: Path

    def post_order(self, api_key: str, payload: dict, key: str) -> requests.Response:
        return requests.post(
            f"{self.url}/t2mobile/fulfilment",
            data=json.dumps(payload),
            timeout=20,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Idempotency-Key": key},
        )

    def health(self, api_key: str) -> requests.Response:
        return requests.get(f"{self.url}/t2mobile/health", headers={"Authorization": f"Bearer {api_key}"}, timeout=20)


@pytest.fixture
def web_through_proxy(api_key, product, tmp_path):
    """The API served by gunicorn (the Procfile's web process, one worker, persistent database
    connections as in production) whose only way to PostgreSQL is the proxy."""
    proxy = PostgresProxy()
    proxy.start()
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings_test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{proxy.port}/{connection.settings_dict['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CONN_MAX_AGE": "60",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "1",
    }
    output = tmp_path / "web.log"
    with output.open("wb") as sink:
        # No control socket: its default path is shared by every gunicorn of the user on this machine.
        process = subprocess.Popen(
            process_argv("web", python=sys.executable, extra=("--no-control-socket",)),
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/t2mobile/health/live") or process.poll() is not None, timeout=20)
        assert process.poll() is None, output.read_text()[-3000:]
        yield WebThroughProxy(url=url, proxy=proxy, output=output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        proxy.cut()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _nothing_stored_for(order_id: str, key: str) -> bool:
    return not (
        Order.objects.filter(order_id=order_id).exists()
        or Fulfilment.objects.filter(order__order_id=order_id).exists()
        or IdempotencyRecord.objects.filter(key=key).exists()
    )


LEAKS = ("Traceback", "psycopg", "OperationalError", "5432", "127.0.0.1", "postgres", "connection to server")


def assert_service_unavailable_envelope(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    request_id = response.headers.get("X-Request-ID")
    assert request_id
    assert response.json() == {
        "success": False,
        "errorCode": "SERVICE_UNAVAILABLE",
        "message": "The service is temporarily unavailable; nothing was stored.",
        "requestId": request_id,
    }
    assert not [leak for leak in LEAKS if leak in response.text]


def test_request_lines_past_4094_bytes_reach_django_under_gunicorn_and_get_the_414_envelope(web_through_proxy, api_key):
    headers = {"Authorization": f"Bearer {api_key}"}
    # A 5,000-character orderId path: gunicorn's default limit (4,094) answered its own HTML 414.
    long_path = requests.get(f"{web_through_proxy.url}/t2mobile/orders/{'T' * 5000}", headers=headers, timeout=10)
    long_query = requests.get(
        f"{web_through_proxy.url}/t2mobile/events", params={"type": "PING," * 800}, headers=headers, timeout=10
    )

    for response in (long_path, long_query):
        assert response.status_code == 414, response.text[:300]
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["errorCode"] == "URI_TOO_LONG"


def test_two_idempotency_key_headers_joined_by_gunicorn_are_refused(web_through_proxy, api_key):
    """gunicorn joins repeated headers with a comma (``dupA,dupB``): neither key may be taken for the other."""
    host, port = web_through_proxy.url.removeprefix("http://").split(":")
    body = json.dumps(order_payload(orderId="T2M-DUPKEY-1")).encode()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/t2mobile/fulfilment")
    for name, value in (
        ("Authorization", f"Bearer {api_key}"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Idempotency-Key", "dupA"),
        ("Idempotency-Key", "dupB"),
    ):
        conn.putheader(name, value)
    conn.endheaders(body)
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()

    assert response.status == 400, answer
    assert answer["errorCode"] == "IDEMPOTENCY_KEY_MISSING" and "once" in answer["message"]
    assert _nothing_stored_for("T2M-DUPKEY-1", "dupA,dupB")
    assert not IdempotencyRecord.objects.filter(key__in=["dupA", "dupB"]).exists()


def test_database_unreachable_is_503_and_nothing_is_half_written(web_through_proxy, api_key):
    web = web_through_proxy
    payload = order_payload(orderId="T2M-PGDOWN-1")
    assert web.health(api_key).status_code == 200  # the web process holds a live connection

    web.proxy.cut()
    refused = web.post_order(api_key, payload, "key-pgdown-1")
    health = web.health(api_key)

    assert_service_unavailable_envelope(refused)
    assert health.status_code == 503
    assert health.json()["status"] == "down"
    assert not [leak for leak in LEAKS if leak in health.text]
    server_log = web.output.read_text()
    assert "database unavailable: OperationalError" in server_log and "Traceback" not in server_log
    # Every line about the refused request, Django's own "Service Unavailable" too, names its id.
    about_it = [
        json.loads(line)
        for line in server_log.splitlines()
        if line.startswith("{") and '"status": 503' in line or "Service Unavailable" in line
    ]
    assert about_it and refused.headers["X-Request-ID"] in {entry.get("request_id") for entry in about_it}
    assert all(entry.get("request_id") for entry in about_it)
    web.proxy.start()
    assert _nothing_stored_for("T2M-PGDOWN-1", "key-pgdown-1")
    accepted = web.post_order(api_key, payload, "key-pgdown-1")
    assert accepted.status_code == 202, accepted.text
    assert "Idempotent-Replayed" not in accepted.headers
    assert accepted.json()["orderId"] == "T2M-PGDOWN-1"
    assert Order.objects.filter(order_id="T2M-PGDOWN-1").count() == 1
    assert Fulfilment.objects.filter(order__order_id="T2M-PGDOWN-1").count() == 1
    assert web.health(api_key).json()["checks"]["database"] == "ok"


def test_database_lost_in_the_middle_of_an_intake_leaves_nothing_behind(web_through_proxy, api_key):
    web = web_through_proxy
    payload = order_payload(orderId="T2M-PGMID-1")
    # The order and its fulfilment are already inserted in the open transaction when the
    # connection dies on the idempotency record's insert, the intake's last write before COMMIT.
    web.proxy.cut_when_client_sends(f'INSERT INTO "{IdempotencyRecord._meta.db_table}"'.encode())

    refused = web.post_order(api_key, payload, "key-pgmid-1")

    assert web.proxy.marker_seen.is_set()
    for table in (Order._meta.db_table, Fulfilment._meta.db_table):
        assert f'INSERT INTO "{table}"'.encode() in web.proxy.client_bytes  # written, not yet committed
    assert_service_unavailable_envelope(refused)
    web.proxy.start()
    assert _nothing_stored_for("T2M-PGMID-1", "key-pgmid-1")
    accepted = web.post_order(api_key, payload, "key-pgmid-1")
    assert accepted.status_code == 202, accepted.text
    assert "Idempotent-Replayed" not in accepted.headers
    assert Order.objects.filter(order_id="T2M-PGMID-1").count() == 1
    assert IdempotencyRecord.objects.filter(key="key-pgmid-1").count() == 1


# --- 2. Zoho answering 503 for a stretch ------------------------------------------------------------


def test_orders_placed_while_zoho_answers_503_are_each_fulfilled_once_after(
    api, product, zoho_sandbox, provisioning_worker, monkeypatch
):
    monkeypatch.setattr(provisioning, "BACKOFF_SCHEDULE", (0.2, 0.2, 0.2))
    monkeypatch.setattr(provisioning, "BACKOFF_THEN_EVERY", 0.3)
    # Zoho's sales orders go down: the first two creates take effect but their answers are lost,
    # then every sales-order call answers 503 until the outage is lifted.
    zoho_sandbox.fail_next(count=2, status=503, path_contains="/salesorders", method="POST", after=True)
    zoho_sandbox.fail_next(count=10**6, status=503, path_contains="/salesorders")
    order_ids = [place(api, orderId=f"T2M-ZDOWN-{n}")["orderId"] for n in range(5)]
    wait_for(lambda: Fulfilment.objects.filter(order__order_id__in=order_ids, attempts__gte=3).count() == 5)
    assert Order.objects.filter(order_id__in=order_ids, status=Order.Status.PROCESSING).count() == 5
    assert zoho_sandbox.state.snapshot()["salesorders"] == 2  # made, but their answers were lost

    with zoho_sandbox.state.lock:
        zoho_sandbox.state.faults.clear()  # Zoho is back
    bodies = [settled(api, order_id) for order_id in order_ids]

    assert [body["status"] for body in bodies] == ["FULFILLED"] * 5
    for body in bodies:
        [sales_order] = zoho_sandbox.sales_orders_for(body["orderId"])
        assert sales_order["status"] == "confirmed"
        assert body["salesOrderId"] == sales_order["salesorder_id"]
        events = WebhookLog.objects.filter(order__order_id=body["orderId"])
        assert list(events.values_list("event_type", flat=True)) == ["ORDER_FULFILLED"]
    assert zoho_sandbox.state.snapshot()["salesorders"] == 5
    assert all("HTTP 503" in f.last_error for f in Fulfilment.objects.filter(order__order_id__in=order_ids))


# --- 3. The partner's receiver down for a stretch ---------------------------------------------------


def test_events_sent_while_the_receiver_is_down_all_arrive_after_in_order_with_the_same_ids(
    hooked_partner, receiver, webhook_secret, webhook_worker, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = (0.1,) * 20
    outage_answers = 10
    answers: list[tuple[str, int]] = []

    def down_then_up(request: Received) -> Answer:
        status = 503 if sum(1 for _, s in answers if s == 503) < outage_answers else 200
        answers.append((request.event_id, status))
        return Answer(status)

    receiver.decide = down_then_up  # called under the receiver's lock
    orders = [make_order(hooked_partner), make_order(hooked_partner)]
    kinds = ("ORDER_FULFILLED", "EXPIRY_REMINDER", "SUBSCRIPTION_EXPIRED")

    with transaction.atomic():
        created = {order.pk: [] for order in orders}
        for kind in kinds:
            for order in orders:
                created[order.pk].append(record(hooked_partner, kind, order))

    all_events = [event for events in created.values() for event in events]
    wait_until(lambda: WebhookLog.objects.filter(status="SENT").count() == len(all_events), timeout=25)
    assert WebhookLog.objects.exclude(status="SENT").count() == 0
    assert sum(1 for _, status in answers if status == 503) == outage_answers
    assert set(receiver.ids()) == {event.event_id for event in all_events}
    for events in created.values():
        ids = [event.event_id for event in events]
        accepted = [event_id for event_id, status in answers if status == 200 and event_id in ids]
        assert accepted == ids  # delivered once each, in creation order
        sent_in_turn = [event_id for event_id, _ in answers if event_id in ids]
        assert [i for n, i in enumerate(sent_in_turn) if n == 0 or sent_in_turn[n - 1] != i] == ids
    for event in all_events:
        event.refresh_from_db()
        statuses = [attempt.status_code for attempt in event.attempts.order_by("pk")]
        assert statuses == [503] * event.retries + [200]
        assert receiver.ids().count(event.event_id) == len(statuses)  # every retry under the same id
    assert max(event.retries for event in all_events) >= 2
    for request in receiver.received:
        timestamp = int(request.headers["webhook-timestamp"])
        expected = standard_signature(
            secrets=[webhook_secret], msg_id=request.event_id, timestamp=timestamp, body=request.body.decode()
        )
        assert request.headers["webhook-signature"] == expected


# --- 4. No personal data or secret in any log line ---------------------------------------------------


class EveryRecord(logging.Handler):
    """Keeps every record that reaches the root logger, formatted by the project's JSON formatter."""

    def __init__(self, formatter: logging.Formatter):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(formatter)
        self.addFilter(ContextFilter())
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        # Also whatever the record carries that the formatter might not print.
        raw = f"{record.getMessage()} {record.__dict__!r}"
        with self._guard:
            self.records.append(record)
            self.lines.append(line)
            self.lines.append(raw)


def _project_formatter() -> logging.Formatter:
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "stdout"]
    return handler.formatter


def test_a_whole_order_logs_no_personal_data_or_secret(
    api, api_key, product, hooked_partner, receiver, webhook_secret, zoho_sandbox, caplog, monkeypatch, settings
):
    email, phone = "ngozi.okafor@example.com", "+2348059876543"
    order_id = "T2M-LOGSCAN-1"
    # One failure on each side, so that the retry paths log too.
    monkeypatch.setattr(provisioning, "BACKOFF_SCHEDULE", (0.2, 0.2, 0.2))
    settings.WEBHOOK_RETRY_SCHEDULE = (0.2, 0.2, 0.2)
    zoho_sandbox.fail_next(status=503, path_contains="/contacts", method="POST")
    receiver.script = [Answer(503)]
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")
    with start_celery_worker(queues=("provisioning", "webhooks", "default")):
        # After the worker's start-up, which sets the root logger's level from its own loglevel.
        caplog.set_level(logging.DEBUG)
        capture = EveryRecord(_project_formatter())
        logging.getLogger().addHandler(capture)
        try:
            response = api.post(
                "/t2mobile/fulfilment",
                data=json.dumps(order_payload(orderId=order_id, customerEmail=email, customerPhone=phone)),
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
                HTTP_X_REQUEST_ID="req-logscan-1",
            )
            assert response.status_code == 202, response.content
            wait_for(lambda: WebhookLog.objects.filter(order__order_id=order_id, status="SENT").exists())
            # The worker logs the attempt just after its commit: wait for that line too.
            wait_for(lambda: any(r.getMessage() == "webhook attempt recorded" for r in list(capture.records)))
        finally:
            logging.getLogger().removeHandler(capture)

    assert Order.objects.get(order_id=order_id).status == Order.Status.FULFILLED
    assert receiver.received  # the webhook really went out
    forbidden = {
        "customer email": [email, quote(email, safe=""), email.split("@")[0]],
        "customer phone": [phone, quote(phone, safe=""), phone[1:], "0" + phone[4:], phone[4:]],
        "API key": [api_key, api_key[len("t2m_live_") :]],
        "webhook secret": [webhook_secret, webhook_secret[len("whsec_") :]],
        "Zoho access token": sorted(zoho_sandbox.state.tokens),
        "Zoho refresh token": [settings.ZOHO_REFRESH_TOKEN],
        "Zoho client secret": [settings.ZOHO_CLIENT_SECRET],
    }
    assert zoho_sandbox.state.tokens, "the sandbox issued no access token: the scan would prove nothing"
    caplog_lines = [f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records]
    lines = capture.lines + caplog_lines
    leaks = [(what, line) for line in lines for what, values in forbidden.items() if any(v in line for v in values)]
    assert leaks == []
    assert len(capture.records) >= 12
    logged = [json.loads(line) for line in capture.lines[::2]]
    of_this_order = {entry["message"] for entry in logged if entry.get("order_id") == order_id}
    assert {
        "webhook delivery failed, retry scheduled",
        "webhook attempt recorded",
        "order accepted",
        "request",
        "zoho access token refreshed",
        "provisioning retry scheduled",
        "order fulfilled",
    } <= of_this_order
    assert all(
        entry.get("order_id") == order_id
        for entry in logged
        if entry["logger"].startswith(("orders.", "integrations."))
    )
    [request_line] = [entry for entry in logged if entry["message"] == "request"]
    assert (request_line["request_id"], request_line["status"]) == ("req-logscan-1", 202)


# --- 5. Production settings and the repository --------------------------------------------------------


def test_production_settings_pass_the_deploy_checks_without_a_warning():
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "SECURE_SSL_REDIRECT": "true",
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
            "ALLOWED_HOSTS": "api.example.com",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "T2MOBILE_WEBHOOK_URL": "https://portal.t2mobile.example/webhooks/icontech",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "false",
            "T2MOBILE_API_KEYS": secrets.token_urlsafe(32),
            "T2MOBILE_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "ZOHO_CLIENT_ID": "1000.client",
            "ZOHO_CLIENT_SECRET": secrets.token_hex(16),
            "ZOHO_REFRESH_TOKEN": "1000." + secrets.token_hex(16),
            "ZOHO_ORGANIZATION_ID": "60012345678",
        }
    )

    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    assert "System check identified no issues" in check.stdout, check.stdout + check.stderr
    assert "WARNING" not in check.stdout + check.stderr


#: The formats of real credentials of this service. Zoho tokens are ``1000.<32 hex>.<32 hex>``;
#: ``whsec_`` secrets carry base64 of 24 to 64 random bytes; generated API keys are
#: ``t2m_live_`` + 43 URL-safe characters.
SECRET_PATTERNS = {
    "webhook secret": re.compile(r"whsec_[A-Za-z0-9+/]{32,}={0,2}"),
    "API key": re.compile(r"t2m_live_[A-Za-z0-9_-]{20,}"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "Zoho token": re.compile(r"1000\.[0-9a-f]{32}\.[0-9a-f]{32}"),
}
#: Published example values: the Standard Webhooks specification's sample secret.
PUBLIC_EXAMPLES = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
PLACEHOLDER_WORDS = ("example", "test", "fake", "dummy", "sample", "placeholder", "change", "xxxx", "secret")


def _clearly_fake(value: str) -> bool:
    """A placeholder says so: it is a published example, it names itself (``…test…``, ``…xxxx…``),
    or it is a ``whsec_`` whose key decodes to readable text, where a real one is random bytes."""
    if value in PUBLIC_EXAMPLES or any(word in value.lower() for word in PLACEHOLDER_WORDS):
        return True
    if value.startswith("whsec_"):
        encoded = value.removeprefix("whsec_")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            return False
        return key.isascii() and key.decode("ascii").isprintable()
    return False


def test_the_repository_holds_no_secret():
    """Scans every file git would ship (tracked, or new and not ignored) for credentials in the
    formats this service uses: ``whsec_`` webhook secrets, ``t2m_live_`` API keys, PEM private keys
    and Zoho OAuth tokens.

    Allowed are only values that are clearly not credentials: the Standard Webhooks
    specification's published sample secret, values that name themselves placeholders (``test``,
    ``example``, ``fake``, ``xxxx``, …), and ``whsec_`` values whose key decodes to readable text
    (hand-written, where a generated key is random bytes). The allowance is the same in every
    file: a real-looking value is refused in tests and docs as much as in code, since a secret
    pasted into a fixture is as leaked as one in settings.
    """
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    paths = [ROOT / name for name in listing.stdout.decode().split("\0") if name]
    scanned = 0
    found = []
    for path in paths:
        if not path.is_file():
            continue  # deleted in the working tree
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary (images)
        text = data.decode("utf-8", errors="replace")
        scanned += 1
        for what, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                if not _clearly_fake(match.group()):
                    found.append((str(path.relative_to(ROOT)), what, match.group()[:16] + "…"))

    assert scanned > 100
    assert found == []
