"""Idempotency under real parallel requests against a live server (threads, real PostgreSQL/Redis)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from orders.models import Fulfilment, IdempotencyRecord, Order
from tests.conftest import order_payload

pytestmark = pytest.mark.django_db(transaction=True)


def fire_at_once(url: str, requests_spec: list[tuple[dict, dict]]) -> list[requests.Response]:
    """Send every (headers, json) at the same instant from its own thread."""
    barrier = threading.Barrier(len(requests_spec))

    def send(spec):
        headers, body = spec
        barrier.wait()
        return requests.post(url, json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=len(requests_spec)) as pool:
        return list(pool.map(send, requests_spec))


def test_fifty_identical_requests_make_one_order_and_one_job(live_server, api_key, product, clean_redis):
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": "same-key-50"}
    payload = order_payload(orderId="T2M-PAR-1")

    responses = fire_at_once(f"{live_server.url}/t2mobile/fulfilment", [(headers, payload)] * 50)

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {202, 409}, statuses
    assert all(r.json()["errorCode"] == "REQUEST_IN_PROGRESS" for r in responses if r.status_code == 409)
    first = [r for r in responses if r.status_code == 202 and "Idempotent-Replayed" not in r.headers]
    assert len(first) == 1
    assert Order.objects.filter(order_id="T2M-PAR-1").count() == 1
    assert Fulfilment.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert clean_redis.llen("provisioning") == 1


def test_same_order_id_under_ten_keys_makes_one_order(live_server, api_key, product, clean_redis):
    payload = order_payload(orderId="T2M-PAR-2")
    specs = [({"Authorization": f"Bearer {api_key}", "Idempotency-Key": f"key-{i}"}, payload) for i in range(10)]

    responses = fire_at_once(f"{live_server.url}/t2mobile/fulfilment", specs)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [409] * 9, statuses
    assert {r.json()["errorCode"] for r in responses if r.status_code == 409} == {"DUPLICATE_ORDER"}
    assert Order.objects.filter(order_id="T2M-PAR-2").count() == 1
    assert clean_redis.llen("provisioning") == 1
