"""Fixtures for Zoho work: the local sandbox and its demo items by name, Zoho settings, a real Celery
worker in a thread, and a private redis-server for tests that stop Redis. Imported by the conftest
files of tests/integrations and tests/orders' provisioning tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import kombu.pools
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.db import connection

from core.redis_roles import ROLE_OFFSETS
from integrations.zoho.sandbox import SANDBOX_REFRESH_TOKEN, ZohoSandbox
from integrations.zoho.sandbox_state import DEMO_ITEMS
from t2mobile_portal.celery import app

# The sandbox's demo catalogue, whose one home is integrations/zoho/sandbox_state.py, by name: the tests'
# product (tests/conftest.py) is Zoho Mail Lite, as in `make run`; the catalogue tests use the others.
MAIL_LITE, WORKPLACE, NORTON, LEGACY_BACKUP = DEMO_ITEMS

ACCOUNTS_URL = "https://accounts.zoho.test"
API_BASE = "https://www.zohoapis.test/inventory/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def zoho_settings(settings):
    """Zoho settings pointing at ``responses`` stubs, with a budget that never slows a test down."""
    settings.ZOHO_ACCOUNTS_URL = ACCOUNTS_URL
    settings.ZOHO_API_BASE = API_BASE
    settings.ZOHO_CLIENT_ID = "1000.TESTCLIENT"
    settings.ZOHO_CLIENT_SECRET = "test-client-secret"
    settings.ZOHO_REFRESH_TOKEN = "1000.test-refresh-token"
    settings.ZOHO_ORGANIZATION_ID = "60012345678"
    settings.ZOHO_RATE_LIMIT = "100000/m"
    settings.ZOHO_MAX_CONCURRENCY = 50
    settings.ZOHO_ACTIVATION_FIELD = ""
    settings.ZOHO_ACTIVATION_FIELD_ID = ""
    settings.ZOHO_CUSTOMER_MODE = "per_customer"
    return settings


@pytest.fixture
def zoho_sandbox(settings):
    """The ZOHO SANDBOX on a free port, with the settings pointing at it."""
    sandbox = ZohoSandbox(port=0, rate_limit=100000, max_inflight=100).start()
    settings.ZOHO_ACCOUNTS_URL = sandbox.accounts_url
    settings.ZOHO_API_BASE = sandbox.api_base
    settings.ZOHO_CLIENT_ID = "sandbox-client"
    settings.ZOHO_CLIENT_SECRET = "sandbox-secret"
    settings.ZOHO_REFRESH_TOKEN = SANDBOX_REFRESH_TOKEN
    settings.ZOHO_ORGANIZATION_ID = "60012345678"
    settings.ZOHO_RATE_LIMIT = "100000/m"
    settings.ZOHO_MAX_CONCURRENCY = 50
    settings.ZOHO_ACTIVATION_FIELD = ""
    settings.ZOHO_ACTIVATION_FIELD_ID = ""
    settings.ZOHO_CUSTOMER_MODE = "per_customer"
    yield sandbox
    sandbox.stop()


def start_celery_worker(queues=("provisioning", "default"), **options):
    """A real Celery worker in a thread of this process (so on the tests' database), consuming the
    given queues: solo pool unless ``options`` (``start_worker``'s: pool, concurrency, loglevel,
    shutdown_timeout) say otherwise. The tests' in-process worker; a worker process of the Procfile
    comes from ``scripts/procfile.py``."""
    options = {"pool": "solo", "shutdown_timeout": 30, **options}
    return start_worker(app, perform_ping_check=False, queues=list(queues), **options)


@pytest.fixture
def provisioning_worker(zoho_sandbox, monkeypatch):
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")
    with start_celery_worker() as worker:
        yield worker


def wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
):
    """Poll ``predicate`` until it is true; on timeout, fail with ``describe()`` (the state seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"\n{describe()}" if describe else ""
            raise AssertionError(f"{what} not met within {timeout:.0f} s{seen}")
        time.sleep(interval)


class PrivateRedis:
    """A redis-server of our own on a free port, which a test may stop (or kill) and start again.

    ``persistent`` keeps an append-only file in ``workdir``, so a stop and start is an outage and
    not a loss (as a production Redis with AOF); without it, a start after a stop is an empty Redis.
    """

    def __init__(self, workdir: Path, *, persistent: bool = False):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.persistent = persistent
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.workdir)]
            + persistence,
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: _pings(self.client()), timeout=10, interval=0.05, what="redis-server answering")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            (self.process.kill if kill else self.process.terminate)()
            self.process.wait(timeout=10)
            self.process = None

    def client(self, role: str = "broker") -> redis.Redis:
        """A client of one role's database (``url`` is database 0: broker 0, cache 1, limits 2)."""
        return redis.Redis(port=self.port, db=ROLE_OFFSETS[role], socket_connect_timeout=0.2)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def point_celery_at(url: str) -> str:
    """Point the Celery app's broker at ``url``; returns the previous URL."""
    previous = app.conf.broker_url
    # Close every pooled connection and forget the pools: kombu keys its pools by URL, so a pool
    # closed but left registered would refuse every later publish with "Acquire on closed pool".
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url
    return previous


def database_url_of_tests() -> str:
    name = connection.settings_dict["NAME"]
    return f"postgres://postgres@127.0.0.1:5432/{name}"
