"""Shared fixtures: a clean Redis per test, the partner with an API key, a published product."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.core.servers.basehttp import ThreadedWSGIServer
from rest_framework.test import APIClient

from catalogue.models import Product
from core.outage import redis_client
from core.redis_roles import redis_caches, redis_role_urls
from partners.models import Partner
from partners.services import api_key_create
from tests.factories import ProductFactory
from tests.zoho_fixtures import MAIL_LITE, wait_for

# The live server must take 50 connections at once (Django's default listen backlog is 10).
ThreadedWSGIServer.request_queue_size = 128


def role_clients() -> dict[str, redis.Redis]:
    """A client per Redis role of the settings (broker, cache, limits: three databases by default)."""
    urls = {
        "broker": settings.CELERY_BROKER_URL,
        "cache": settings.REDIS_CACHE_URL,
        "limits": settings.REDIS_LIMITS_URL,
    }
    return {role: redis.Redis.from_url(url) for role, url in urls.items()}


def caches_on(url: str, *, timeout: float = 2) -> dict:
    """``CACHES`` with both aliases (cache and limits) on the databases ``url`` yields, as in production."""
    urls = redis_role_urls(url)
    caches = redis_caches(cache_url=urls["cache"], limits_url=urls["limits"])
    for config in caches.values():
        config["OPTIONS"] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    return caches


def point_redis_roles_at(settings, url: str, *, timeout: float = 2) -> None:
    """Point the cache, the limits and their direct clients at the Redis ``url`` (the broker is
    Celery's: ``tests.zoho_fixtures.point_celery_at``)."""
    urls = redis_role_urls(url)
    settings.REDIS_URL, settings.REDIS_CACHE_URL, settings.REDIS_LIMITS_URL = url, urls["cache"], urls["limits"]
    settings.CACHES = caches_on(url, timeout=timeout)
    redis_client.cache_clear()


@pytest.fixture(autouse=True)
def clean_redis():
    """Each test starts with every Redis role's database empty: no queued jobs, cache, rate-limit
    counts, locks or leases. The client given is the broker's (its queues are lists named after them)."""
    clients = role_clients()
    for client in clients.values():
        client.flushdb()
    yield clients["broker"]
    for client in clients.values():
        client.close()


@pytest.fixture
def limits_redis(clean_redis):
    """The limits role's database (rate-limit counters, slots, locks, the Zoho budget, alert throttles)."""
    client = redis.Redis.from_url(settings.REDIS_LIMITS_URL)
    yield client
    client.close()


@pytest.fixture
def partner(db) -> Partner:
    partner, _ = Partner.objects.get_or_create(
        partner_id=settings.PARTNER_ID, defaults={"name": "T2Mobile", "prefix": settings.PARTNER_PREFIX}
    )
    return partner


@pytest.fixture
def api_key(partner) -> str:
    _, plain = api_key_create(partner=partner, name="test")
    return plain


@pytest.fixture
def api(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def product(db) -> Product:
    return ProductFactory(
        item_id=MAIL_LITE["item_id"],
        name=MAIL_LITE["name"],
        sku=MAIL_LITE["sku"],
        description=MAIL_LITE["description"],
        rate=Decimal(str(MAIL_LITE["rate"])),
        plans={"1_MONTH": "1500.00", "12_MONTHS": "15000.00"},
    )


def order_payload(**overrides) -> dict:
    payload = {
        "orderId": "T2M123456",
        "productId": MAIL_LITE["item_id"],
        "tenure": "12_MONTHS",
        "quantity": 1,
        "customerId": "CUST-0091",
        "customerName": "Ada Obi",
        "customerEmail": "ada@example.com",
        "customerPhone": "+2348031234567",
        "type": "NEW",
        "renewalOf": None,
        "metadata": {"campaign": "DEC-PROMO"},
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def payload():
    return order_payload()


def place_order(api, **overrides) -> dict:
    """POST one order (the idempotency key is derived from its orderId); asserts the 202."""
    payload = order_payload(**overrides)
    response = api.post(
        "/t2mobile/fulfilment",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"key-{payload['orderId']}",
    )
    assert response.status_code == 202, response.content
    return payload


def settled(api, order_id: str, *, timeout: float = 30) -> dict:
    """The order as the partner sees it, once it is FULFILLED or FAILED."""

    def done():
        body = api.get(f"/t2mobile/orders/{order_id}").json()
        return body if body["status"] in ("FULFILLED", "FAILED") else None

    return wait_for(done, timeout=timeout)
