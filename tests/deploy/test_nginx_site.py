"""The repository's nginx site in front of a real gunicorn (the Procfile's web line, production
settings: DEBUG off, SSL redirect on, the proxy header and TRUSTED_PROXIES of deploy/env.example),
driven over HTTPS with a self-signed certificate: what a partner and an operator see through it.

The test client connects from 127.0.0.2 and 127.0.0.3 (loopback addresses other than nginx's
127.0.0.1), so the address the app sees can be told apart from the proxy's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from requests.adapters import HTTPAdapter

from orders.models import Order
from scripts.procfile import process_argv
from tests.conftest import order_payload
from tests.deploy.nginx import NGINX, ROOT, SITE, Ports, nginx_start, self_signed_certificate, stop
from tests.zoho_fixtures import free_port, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not NGINX.exists(), reason="/usr/sbin/nginx is not installed (.ci/run installs it)"),
]

METRICS_TOKEN = secrets.token_urlsafe(32)
CALLER, OTHER_CALLER = "127.0.0.2", "127.0.0.3"
MAX_BODY = 64 * 1024


class FromAddress(HTTPAdapter):
    """Connections from the given local address."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


@dataclass
class Stack:
    https: str
    http: str
    internal: str
    gunicorn: str
    cert: Path
    static_root: Path
    web_log: Path

    def session(self, address: str = CALLER) -> requests.Session:
        session = requests.Session()
        session.mount("https://", FromAddress(address))
        session.mount("http://", FromAddress(address))
        session.verify = str(self.cert)
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would win over verify
        return session


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    directory = tmp_path_factory.mktemp("nginx")
    cert, key = self_signed_certificate(directory)
    static_root = directory / "static"
    (static_root / "probe").mkdir(parents=True)
    (static_root / "probe" / "hello.txt").write_text("collected\n")
    ports = Ports(http=free_port(), https=free_port(), internal=free_port(), upstream=free_port())
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings_test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "true",
        # deploy/env.example's values behind nginx on the same host
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "TRUSTED_PROXIES": "127.0.0.1",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "AUTH_FAILURE_RATE_LIMIT": "3/h",
        "METRICS_TOKEN": METRICS_TOKEN,
        "LOG_FORMAT": "json",
        "GUNICORN_BIND": f"127.0.0.1:{ports.upstream}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "4",
    }
    env.pop("FORWARDED_ALLOW_IPS", None)
    web_log = directory / "web.log"
    with web_log.open("wb") as sink:
        web = subprocess.Popen(
            process_argv("web", python=sys.executable, extra=("--no-control-socket",)),
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    gunicorn = f"http://127.0.0.1:{ports.upstream}"
    nginx = None
    try:
        wait_for(lambda: _answers(f"{gunicorn}/t2mobile/health/live") or web.poll() is not None, timeout=30)
        assert web.poll() is None, web_log.read_text()[-3000:]
        nginx = nginx_start(directory, ports=ports, cert=cert, key=key, static_root=static_root)
        yield Stack(
            https=f"https://localhost:{ports.https}",
            http=f"http://localhost:{ports.http}",
            internal=f"https://127.0.0.1:{ports.internal}",
            gunicorn=gunicorn,
            cert=cert,
            static_root=static_root,
            web_log=web_log,
        )
    finally:
        if nginx is not None:
            stop(nginx)
        stop(web)


def _answers(url: str) -> bool:
    try:
        # gunicorn's own address, as the Host: an answer of any kind (the SSL redirect) means it is up
        return requests.get(url, timeout=1, allow_redirects=False).status_code in (200, 301)
    except requests.RequestException:
        return False


def _post_order(session: requests.Session, url: str, api_key: str, payload: dict, **headers) -> requests.Response:
    return session.post(
        f"{url}/t2mobile/fulfilment",
        data=json.dumps(payload),
        timeout=20,
        allow_redirects=False,
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"key-{payload['orderId']}",
            **headers,
        },
    )


def test_an_order_placed_over_https_through_nginx_is_stored_and_read_back_as_https(stack, api_key, product):
    session = stack.session()
    payload = order_payload(orderId="T2M-NGINX-1")

    placed = _post_order(session, stack.https, api_key, payload)
    assert placed.status_code == 202, placed.text
    assert placed.json()["orderId"] == "T2M-NGINX-1"
    # Django saw https: with SECURE_SSL_REDIRECT on it would have answered 301 otherwise, and it
    # sends HSTS only on a secure request
    assert placed.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert Order.objects.filter(order_id="T2M-NGINX-1").exists()

    read = session.get(f"{stack.https}/t2mobile/orders/T2M-NGINX-1", headers={"Authorization": f"Bearer {api_key}"})
    assert read.status_code == 200, read.text
    assert read.json()["orderId"] == "T2M-NGINX-1"
    assert read.headers["Strict-Transport-Security"].startswith("max-age=31536000")

    # The same request straight to gunicorn, without nginx's X-Forwarded-Proto, is sent to https
    direct = _post_order(requests.Session(), stack.gunicorn, api_key, order_payload(orderId="T2M-NGINX-2"))
    assert direct.status_code == 301
    assert direct.headers["Location"].startswith("https://")


def test_the_request_id_is_the_callers_and_nginx_and_the_app_log_the_same_one(stack, api_key, product):
    request_id = f"partner-{uuid.uuid4().hex}"
    answer = stack.session().get(
        f"{stack.https}/t2mobile/orders/T2M-NONE",
        headers={"Authorization": f"Bearer {api_key}", "X-Request-ID": request_id},
    )
    assert answer.status_code == 404
    assert answer.headers["X-Request-ID"] == request_id == answer.json()["requestId"]
    wait_for(lambda: f"rid={request_id}" in (stack.static_root.parent / "site.log").read_text(), timeout=5)
    wait_for(lambda: request_id in stack.web_log.read_text(), timeout=5)


def test_the_address_the_limits_count_is_the_callers_not_nginxs_and_cannot_be_forged(stack, limits_redis):
    caller, other = stack.session(CALLER), stack.session(OTHER_CALLER)
    # Given a caller behind nginx trying wrong keys, each claiming to be someone else
    wrong = {"Authorization": f"Bearer {'x' * 40}", "X-Forwarded-For": "198.51.100.7"}
    answers = [caller.get(f"{stack.https}/t2mobile/orders", headers=wrong).status_code for _ in range(4)]

    # Then the fourth is refused for too many failures (AUTH_FAILURE_RATE_LIMIT 3/h) ...
    assert answers == [401, 401, 401, 429]
    # ... while another address behind the same nginx is not held to the first one's failures
    assert other.get(f"{stack.https}/t2mobile/orders", headers=wrong).status_code == 401
    # and the counters in Redis are the callers' addresses: not nginx's, not the forged one
    counted = sorted(key.decode().split(":")[3] for key in limits_redis.scan_iter("t2m:rl:authfail:*"))
    assert counted == [CALLER, OTHER_CALLER]


def test_http_is_redirected_to_https_with_its_path_and_query(stack):
    answer = stack.session().get(f"{stack.http}/t2mobile/orders?status=FULFILLED", allow_redirects=False)
    assert answer.status_code == 301
    assert answer.headers["Location"] == "https://localhost/t2mobile/orders?status=FULFILLED"


def test_a_body_over_64_kib_gets_the_apis_413_envelope_and_one_at_the_limit_reaches_the_app(stack, api_key):
    session = stack.session()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Idempotency-Key": "big"}
    too_big = b'{"orderId": "' + b"x" * MAX_BODY + b'"}'
    stopped, reached = f"big-{uuid.uuid4().hex}", f"big-{uuid.uuid4().hex}"

    through_nginx = session.post(
        f"{stack.https}/t2mobile/fulfilment", data=too_big, headers={**headers, "X-Request-ID": stopped}
    )
    # Django's own answer to the same body, straight from gunicorn
    from_django = requests.post(
        f"{stack.gunicorn}/t2mobile/fulfilment",
        data=too_big,
        headers={**headers, "X-Forwarded-Proto": "https", "Host": "localhost", "X-Request-ID": reached},
    )
    assert through_nginx.status_code == from_django.status_code == 413
    assert through_nginx.headers["Content-Type"] == from_django.headers["Content-Type"] == "application/json"
    body, django_body = through_nginx.json(), from_django.json()
    assert body["requestId"] == through_nginx.headers["X-Request-ID"] == stopped
    assert {**body, "requestId": None} == {**django_body, "requestId": None}
    assert body["errorCode"] == "PAYLOAD_TOO_LARGE"
    # nginx answered it: the app logged the request it was sent directly, never the one through nginx
    wait_for(lambda: reached in stack.web_log.read_text(), timeout=5)
    assert stopped not in stack.web_log.read_text()

    # without an X-Request-ID of the caller's, nginx makes one of the app's form (32 hex characters)
    anonymous = session.post(f"{stack.https}/t2mobile/fulfilment", data=too_big, headers=headers)
    assert anonymous.status_code == 413
    assert re.fullmatch(r"[0-9a-f]{32}", anonymous.json()["requestId"])
    assert anonymous.headers["X-Request-ID"] == anonymous.json()["requestId"]

    # A chunked body (no Content-Length for the app to check) is cut by nginx alike
    chunked = session.post(f"{stack.https}/t2mobile/fulfilment", data=iter([too_big]), headers=headers)
    assert chunked.status_code == 413
    assert chunked.json()["errorCode"] == "PAYLOAD_TOO_LARGE"

    # 64 KiB exactly passes nginx and is the app's to judge (not JSON an order: 400)
    at_limit = session.post(f"{stack.https}/t2mobile/fulfilment", data=b" " * MAX_BODY, headers=headers)
    assert at_limit.status_code == 400, at_limit.text
    assert at_limit.json()["errorCode"] != "PAYLOAD_TOO_LARGE"


def test_metrics_and_admin_are_not_on_the_public_name_but_on_the_internal_port(stack, db):
    session = stack.session()
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    for path in ("/metrics", "/metrics/", "/admin/", "/admin/login/", "/admin", "/%61dmin/", "//admin/"):
        answer = session.get(f"{stack.https}{path}", headers=bearer, allow_redirects=False)
        assert answer.status_code == 404, path
        assert "X-Request-ID" not in answer.headers, f"{path} reached the app"

    internal = stack.session("127.0.0.1")
    metrics = internal.get(f"{stack.internal}/metrics", headers=bearer)
    assert metrics.status_code == 200, metrics.text[:500]
    assert "t2m_" in metrics.text
    admin = internal.get(f"{stack.internal}/admin/", allow_redirects=False)
    assert admin.status_code == 302
    assert admin.headers["Location"].startswith("/admin/login/")


def test_static_files_are_served_by_nginx_from_the_collected_root(stack):
    answer = stack.session().get(f"{stack.https}/static/probe/hello.txt")
    assert answer.status_code == 200
    assert answer.text == "collected\n"
    assert "X-Request-ID" not in answer.headers  # nginx's answer, not the app's
    assert stack.session().get(f"{stack.https}/static/probe/absent.txt").status_code == 404


def test_the_sites_body_limit_is_the_partner_apis():
    site = SITE.read_text()
    limits = re.findall(r"^\s*client_max_body_size (\d+)k;", site, re.MULTILINE)
    assert limits[0] == str(settings.PARTNER_API_MAX_BODY_BYTES // 1024)  # the public server
    assert limits[1] == str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024)  # the internal one (the admin)
