"""Zoho's limit answers and refused credentials, each its own case (zoho.md, "Errors and limits"):
the shared budget pauses every worker, the daily cap is enforced here, the credentials' back-off is
shared and never becomes a refresh storm, and none of these waits uses up an order's retries.

Zoho is stubbed with ``responses``: HTTP 429 with the codes others report (44, 45, 1070; Zoho's own
pages list none) and no ``Retry-After``; the token endpoint's ``error`` field.
"""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from django.utils import timezone

from core.redis_roles import limits
from integrations.zoho import budget as budget_module
from integrations.zoho.auth import AUTH_BACKOFF_KEY
from integrations.zoho.budget import seconds_until_tomorrow, zoho_budget
from integrations.zoho.client import ZohoClient, zoho_day_zone_refresh
from integrations.zoho.errors import ZohoAuthWaitError, ZohoWaitError
from integrations.zoho.sandbox import SANDBOX_REFRESH_TOKEN, ZohoSandbox
from orders.models import Fulfilment
from orders.provisioning import order_provision
from t2mobile_portal.health import health_report
from tests.conftest import place_order
from tests.integrations.test_zoho_client import API_BASE, TOKEN_BODY, TOKEN_URL, items_body, token_ok

LIMIT_ANSWERS = {
    44: "You have made too many requests continuously. Please try again after some time.",
    45: "You have exceeded the maximum number of API calls allowed per day.",
    1070: "Maximum concurrent API call limit reached.",
}


def client() -> ZohoClient:
    return ZohoClient.from_settings()


@pytest.mark.parametrize("code", [44, 1070, 45, 4820])
def test_a_limit_answer_without_retry_after_pauses_every_worker_60_s_whatever_its_code(zoho_settings, code):
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        items = rsps.get(
            f"{API_BASE}/items",
            status=429,
            json={"code": code, "message": LIMIT_ANSWERS.get(code, "Too many requests.")},
        )
        with pytest.raises(ZohoWaitError) as first:
            client().items_page(page=1)

        # Every worker (another client, the same Redis) now waits without calling Zoho
        with pytest.raises(ZohoWaitError) as second:
            client().items_page(page=1)
        assert items.call_count == 1

    expected = 60  # never a day at once: a 45 just after midnight used to pause about a day
    assert expected - 5 < first.value.retry_after <= expected + 1
    assert expected - 5 < second.value.retry_after <= expected + 1
    pause = zoho_budget().paused()
    assert f"code {code}" in pause.reason
    checks = health_report()["checks"]
    assert f"code {code}" in checks["zohoPaused"]["reason"] and checks["zohoPaused"]["until"].endswith("Z")


def test_limit_answers_that_keep_coming_double_the_pause_up_to_30_minutes(zoho_settings):
    budget = zoho_budget()
    seconds = []
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(f"{API_BASE}/items", status=429, json={"code": 45, "message": LIMIT_ANSWERS[45]})
        for _ in range(7):
            with pytest.raises(ZohoWaitError) as caught:
                client().items_page(page=1)
            seconds.append(round(caught.value.retry_after))
            budget.redis.delete("t2m:zoho:paused_until")  # the pause has passed; Zoho answers a limit again

    assert seconds == [60, 120, 240, 480, 960, 1800, 1800]
    budget.redis.delete("t2m:zoho:limit_strikes")  # ten quiet minutes later
    assert budget.limit_backoff() == 60


def test_the_daily_limit_is_enforced_here_before_zoho_refuses(zoho_settings):
    zoho_settings.ZOHO_DAILY_LIMIT = 3
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        items = rsps.get(f"{API_BASE}/items", json=items_body([]))
        for _ in range(3):
            client().items_page(page=1)

        with pytest.raises(ZohoWaitError) as capped:
            client().items_page(page=1)

        assert items.call_count == 3  # the fourth call never went out
    assert capped.value.retry_after > seconds_until_tomorrow() - 5
    assert "ZOHO_DAILY_LIMIT" in health_report()["checks"]["zohoPaused"]["reason"]


def test_refused_credentials_back_off_for_every_worker_2_minutes_doubling_to_10(zoho_settings):
    waits = []
    with responses.RequestsMock() as rsps:
        token = rsps.post(TOKEN_URL, json={"error": "invalid_client"})
        for _ in range(5):
            with pytest.raises(ZohoAuthWaitError) as refused:
                client().access_token()
            waits.append(round(refused.value.retry_after))
            # 20 workers asking during the back-off send no token request at all
            outcomes: list[str] = []
            threads = [threading.Thread(target=_ask_for_a_token, args=(outcomes,)) for _ in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert outcomes == ["ZohoAuthWaitError"] * 20
            # the back-off ran out (its end moved, not the clock: this test is about the steps)
            limits.set(AUTH_BACKOFF_KEY, {**limits.get(AUTH_BACKOFF_KEY), "until": 0}, timeout=3600)
        assert token.call_count == 5

    assert waits == [120, 240, 480, 600, 600]
    checks = health_report()["checks"]
    assert checks["zoho"] == "failing" and checks["zohoFailingSince"].endswith("Z")


def _ask_for_a_token(outcomes: list[str]) -> None:
    try:
        ZohoClient.from_settings().access_token()
        outcomes.append("token")
    except Exception as exc:
        outcomes.append(type(exc).__name__)


def test_access_denied_from_the_token_endpoint_waits_10_minutes(zoho_settings):
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json={"error": "Access Denied", "error_description": "You have made too many requests"})
        with pytest.raises(ZohoAuthWaitError) as denied:
            client().access_token()

    assert round(denied.value.retry_after) == 600


def test_a_working_token_ends_the_back_off(zoho_settings):
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json={"error": "invalid_client"})
        with pytest.raises(ZohoAuthWaitError):
            client().access_token()
    limits.set(AUTH_BACKOFF_KEY, {**limits.get(AUTH_BACKOFF_KEY), "until": 0}, timeout=3600)
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=TOKEN_BODY)
        client().access_token()

    assert limits.get(AUTH_BACKOFF_KEY) is None
    assert health_report()["checks"]["zoho"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_an_order_that_waits_for_zoho_keeps_its_retry_schedule(api, product, zoho_settings):
    place_order(api, orderId="T2M-WAIT-1")
    fulfilment = Fulfilment.objects.get(order__order_id="T2M-WAIT-1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        token_ok(rsps)
        rsps.get(f"{API_BASE}/contacts", status=429, json={"code": 44, "message": LIMIT_ANSWERS[44]})
        order_provision(order_pk=fulfilment.order_id)

        # and a second run during the pause waits too, without a call and without an attempt
        Fulfilment.objects.filter(pk=fulfilment.pk).update(next_attempt_at=timezone.now())
        order_provision(order_pk=fulfilment.order_id)

    fulfilment.refresh_from_db()
    assert fulfilment.order.status == "PROCESSING"
    assert fulfilment.attempts == 0  # the waits were Zoho's, not the order's
    assert "code 44" in fulfilment.last_error
    wait = (fulfilment.next_attempt_at - timezone.now()).total_seconds()
    assert 50 < wait <= 61


@pytest.mark.parametrize(("limits", "code"), [({"rate_limit": 2}, 44), ({"daily_limit": 2}, 45)], ids=["44", "45"])
def test_the_sandbox_answers_its_limits_as_zoho_documents_them(zoho_settings, limits, code):
    sandbox = ZohoSandbox(port=0, **limits).start()
    try:
        token = requests.post(
            f"{sandbox.accounts_url}/oauth/v2/token",
            data={"refresh_token": SANDBOX_REFRESH_TOKEN, "grant_type": "refresh_token"},
            timeout=5,
        ).json()["access_token"]
        answers = [
            requests.get(
                f"{sandbox.api_base}/items",
                headers={"Authorization": f"Zoho-oauthtoken {token}"},
                params={"organization_id": "60012345678"},
                timeout=5,
            )
            for _ in range(3)
        ]
    finally:
        sandbox.stop()

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == code and "Retry-After" not in answers[2].headers


def test_the_daily_window_follows_the_organisations_time_zone_when_zoho_tells_it(zoho_settings):
    budget_module._day_zone_memo.update(zone=None, until=0.0)
    far_east = "Pacific/Kiritimati"  # UTC+14: another date than Lagos for ten hours of every day
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.get(
            f"{API_BASE}/organizations",
            json={
                "code": 0,
                "message": "success",
                "organizations": [
                    {"organization_id": "1111", "name": "Another", "time_zone": "Europe/Paris"},
                    {"organization_id": "60012345678", "name": "IconTech", "time_zone": far_east},
                ],
            },
        )
        assert zoho_day_zone_refresh(client()) == far_east
        # The look-up itself was counted on the day known before it (Lagos'), which is Kiritimati's
        # too before 11:00 Lagos time: start the organisation's day from zero, whatever the hour.
        redis = zoho_budget().redis
        for key in redis.scan_iter(match="t2m:zoho:calls:*"):
            redis.delete(key)
        zoho_settings.ZOHO_DAILY_LIMIT = 1  # one call a day, counted on the organisation's day
        rsps.get(f"{API_BASE}/items", json=items_body([]))
        client().items_page(page=1)
        with pytest.raises(ZohoWaitError) as capped:
            client().items_page(page=1)

    zone = ZoneInfo(far_east)
    today = datetime.now(zone).date().isoformat()
    assert zoho_budget().redis.get(f"t2m:zoho:calls:{today}") == b"1"
    midnight = datetime.combine(datetime.now(zone).date(), datetime.min.time(), tzinfo=zone).timestamp() + 86400
    assert abs(capped.value.retry_after - (midnight - timezone.now().timestamp())) < 5
    budget_module._day_zone_memo.update(zone=None, until=0.0)
