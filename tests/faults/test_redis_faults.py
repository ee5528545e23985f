"""Redis, the one server of the cache, the rate limits and the broker, stopped for a while and then
restarted empty, under the Procfile's processes (operations.md, "Faults the service rides out").

Real stops of a real redis-server; real waiting with the production sweep and beat intervals.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from orders.models import Order
from tests.faults.system import wait_for
from tests.webhooks.conftest import Answer

pytestmark = [pytest.mark.slow]

RECOVERY_BOUND_SECONDS = 120


def fulfilled_and_announced(system, order_ids: list[str]) -> bool:
    # Read from the database: polling the API this often would spend the partner's rate limit.
    if Order.objects.filter(order_id__in=order_ids, status=Order.Status.FULFILLED).count() != len(order_ids):
        return False
    announced = {event["data"]["orderId"] for event in system.receiver.verified() if event["type"] == "ORDER_FULFILLED"}
    return set(order_ids) <= announced


def admin_login(system, username: str, password: str):
    """A staff browser logged into the admin. Production cookies are Secure and this loopback box
    speaks plain HTTP (no TLS proxy in front), so the cookies are sent back by hand."""
    page = requests.get(f"{system.base}/admin/login/", timeout=10)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    csrf = page.cookies["csrftoken"]
    logged_in = requests.post(
        f"{system.base}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"},
        headers={"Referer": f"{system.base}/admin/login/", "Cookie": f"csrftoken={csrf}"},
        timeout=10,
        allow_redirects=False,
    )
    assert logged_in.status_code == 302, logged_in.text[-2000:]
    browser = requests.Session()
    browser.headers["Cookie"] = f"csrftoken={csrf}; sessionid={logged_in.cookies['sessionid']}"
    return browser


def test_redis_down_the_api_answers_and_what_it_accepted_goes_out_within_2_minutes_of_redis_back(system, product):
    system.start()
    system.manage(
        "createsuperuser",
        "--noinput",
        "--username=ops-lead",
        "--email=ops@icontech.example",
        DJANGO_SUPERUSER_PASSWORD="a-long-test-password-1",
    )
    assert system.order("T2M-BEFORE-1").status_code == 202  # warm: the service works

    # Given Redis stops (cache, rate limits and broker at once)
    system.redis.stop()

    # Then the partner API keeps answering from the database, and intake stores the orders
    catalogue = system.get("/t2mobile/products")
    assert catalogue.status_code == 200 and catalogue.json()["products"], catalogue.text
    accepted = [system.order(f"T2M-OUTAGE-{n}") for n in range(3)]
    assert [response.status_code for response in accepted] == [202, 202, 202], [r.text for r in accepted]
    replay = system.order("T2M-OUTAGE-0")
    assert replay.status_code == 202 and replay.headers.get("Idempotent-Replayed") == "true"
    assert system.get("/t2mobile/orders/T2M-OUTAGE-0").json()["status"] == "PROCESSING"
    wrong_key = system.http.get(f"{system.base}/t2mobile/products", headers={"Authorization": "Bearer wrong"})
    assert wrong_key.status_code == 401 and wrong_key.json()["errorCode"] == "UNAUTHORIZED"
    health = system.get("/t2mobile/health")
    body = health.json()
    assert body["status"] == "degraded", body
    assert body["checks"]["broker"] == "down" and body["checks"]["cache"] == "down"
    # and the admin works: log in, find the order
    browser = admin_login(system, "ops-lead", "a-long-test-password-1")
    orders_page = browser.get(f"{system.base}/admin/orders/order/?q=T2M-OUTAGE-0", timeout=10)
    assert orders_page.status_code == 200 and "T2M-OUTAGE-0" in orders_page.text
    assert browser.get(f"{system.base}/admin/", timeout=10).status_code == 200
    # the fallback is announced once a minute per web process, not on every request
    warnings = system.processes["web"].output(200_000).count("rate limits are counted in this process")
    assert 1 <= warnings <= 2, system.processes["web"].output()

    # When Redis is back after a while, no staff action
    time.sleep(20)
    system.redis.start()
    back = time.monotonic()

    # Then every order accepted meanwhile is provisioned and announced within 2 minutes
    ids = ["T2M-BEFORE-1"] + [f"T2M-OUTAGE-{n}" for n in range(3)]
    wait_for(
        lambda: fulfilled_and_announced(system, ids),
        timeout=RECOVERY_BOUND_SECONDS,
        what="orders out after Redis",
        describe=lambda: system.flow_state(ids),
    )
    print(f"\nRedis down: every order out {time.monotonic() - back:.1f} s after Redis came back")
    assert system.dead() == {}, "a process exited during the Redis outage"
    assert system.health()["status"] == "ok"


def test_redis_restarted_empty_every_order_and_event_in_flight_goes_out_within_2_minutes(system_losing_redis, product):
    system = system_losing_redis
    system.start()
    # Zoho is slow to create sales orders and the partner slow to answer, so that work piles up
    system.sandbox.fail_next(count=1000, status=0, delay=1.0, path_contains="/salesorders", method="POST")
    system.receiver.default = Answer(delay=1.0)
    ids = [f"T2M-FLIGHT-{n}" for n in range(10)]
    assert [system.order(oid).status_code for oid in ids] == [202] * 10

    # Given some orders are done and announced or being announced, and the rest wait in the queue
    wait_for(lambda: system.receiver.received, timeout=60, what="a first delivery")
    statuses = list(Order.objects.filter(order_id__in=ids).values_list("status", flat=True))
    assert "PROCESSING" in statuses, statuses

    # When Redis dies and comes back empty: every queued job, marker and count is gone
    system.redis.stop(kill=True)
    system.redis.start()
    restarted = time.monotonic()
    assert system.redis.client().dbsize() < 5

    # Then every order is fulfilled and every event delivered within 2 minutes, once per order
    wait_for(
        lambda: fulfilled_and_announced(system, ids),
        timeout=RECOVERY_BOUND_SECONDS,
        what="orders and events out after the restart",
        describe=lambda: system.flow_state(ids),
    )
    print(f"\nRedis restarted empty: every order and event out {time.monotonic() - restarted:.1f} s after")
    for oid in ids:
        assert len(system.sandbox.sales_orders_for(oid)) == 1, oid
    assert system.dead() == {}
