"""Bearer API keys (hashed, revocable, rotated), the per-partner rate limit and the auth-failure limit."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from core.outage import redis_breaker, redis_client
from partners import throttling
from partners.models import ApiKey, Partner, WebhookSecret
from partners.services import (
    DEFAULT_ROTATION_GRACE,
    api_key_create,
    api_key_hash,
    api_key_revoke,
    partner_sync_from_settings,
)
from partners.throttling import parse_rate
from t2mobile_portal.checks import check_trusted_proxies
from tests.zoho_fixtures import free_port

pytestmark = pytest.mark.django_db


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer wrong-key", "Bearer " + "x" * 300],
)
def test_missing_malformed_or_unknown_key_is_401_with_www_authenticate(api_key, header):
    response = client_with(header).get("/t2mobile/products")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["errorCode"] == "UNAUTHORIZED"


def test_valid_key_is_accepted_and_last_use_recorded(api, api_key):
    response = api.get("/t2mobile/products")

    assert response.status_code == 200
    assert ApiKey.objects.get(hash=api_key_hash(api_key)).last_used_at is not None


def test_revoked_key_is_refused_on_the_next_request(api, api_key):
    assert api.get("/t2mobile/products").status_code == 200

    api_key_revoke(api_key=ApiKey.objects.get(hash=api_key_hash(api_key)))

    assert api.get("/t2mobile/products").status_code == 401


def test_a_partner_may_hold_two_active_keys(partner, api_key):
    _, second = api_key_create(partner=partner)

    assert client_with(f"Bearer {api_key}").get("/t2mobile/products").status_code == 200
    assert client_with(f"Bearer {second}").get("/t2mobile/products").status_code == 200


def test_keys_are_stored_only_as_hashes(api_key):
    stored = ApiKey.objects.get()

    assert api_key not in (stored.hash, stored.prefix, stored.name)
    assert stored.hash == api_key_hash(api_key)
    assert len(stored.prefix) < len(api_key) // 2


def test_create_api_key_command_prints_a_working_key_once(partner):
    out, err = io.StringIO(), io.StringIO()

    call_command("create_api_key", "--partner", partner.partner_id, stdout=out, stderr=err)

    plain = out.getvalue().strip()
    assert plain.startswith("t2m_live_") and len(plain) > 40
    assert plain not in err.getvalue()
    assert client_with(f"Bearer {plain}").get("/t2mobile/products").status_code == 200


def test_create_api_key_for_unknown_partner_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No partner"):
        call_command("create_api_key", "--partner", "NOPE")


def test_partner_and_keys_from_settings_are_synced_idempotently(db, settings):
    settings.PARTNER_ID = "ICONTECH001"
    settings.T2MOBILE_API_KEYS = ["env-key-one-0123456789", "env-key-two-0123456789"]

    partner_sync_from_settings()
    partner_sync_from_settings()

    partner = Partner.objects.get(partner_id="ICONTECH001")
    assert partner.api_keys.count() == 2
    assert client_with("Bearer env-key-two-0123456789").get("/t2mobile/products").status_code == 200


def test_a_key_taken_out_of_t2mobile_api_keys_is_revoked_and_other_keys_are_left_alone(db, settings):
    settings.PARTNER_ID = "ICONTECH001"
    settings.T2MOBILE_API_KEYS = ["env-key-old-0123456789", "env-key-new-0123456789"]
    partner = partner_sync_from_settings()
    _, made_by_hand = api_key_create(partner=partner, name="monitoring")

    settings.T2MOBILE_API_KEYS = ["env-key-new-0123456789"]  # the rotation's last step
    partner_sync_from_settings()

    assert client_with("Bearer env-key-old-0123456789").get("/t2mobile/products").status_code == 401
    assert client_with("Bearer env-key-new-0123456789").get("/t2mobile/products").status_code == 200
    assert client_with(f"Bearer {made_by_hand}").get("/t2mobile/products").status_code == 200

    settings.T2MOBILE_API_KEYS = []  # a deploy that lost the variable locks nobody out
    partner_sync_from_settings()
    assert client_with("Bearer env-key-new-0123456789").get("/t2mobile/products").status_code == 200


def test_a_new_webhook_secret_from_the_environment_retires_the_old_one_after_the_grace_period(db, settings):
    settings.T2MOBILE_WEBHOOK_SECRET = "whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA=="
    partner = partner_sync_from_settings()
    partner_sync_from_settings()  # the same secret again changes nothing
    assert WebhookSecret.objects.get(partner=partner).expires_at is None

    settings.T2MOBILE_WEBHOOK_SECRET = "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldw=="
    before = timezone.now()
    partner_sync_from_settings()

    old = WebhookSecret.objects.get(partner=partner, secret__startswith="whsec_b2xk")
    new = WebhookSecret.objects.get(partner=partner, secret__startswith="whsec_bmV3")
    assert new.expires_at is None
    assert before + DEFAULT_ROTATION_GRACE <= old.expires_at <= timezone.now() + DEFAULT_ROTATION_GRACE
    assert old.expires_at - before < DEFAULT_ROTATION_GRACE + timedelta(seconds=5)


def test_over_the_partner_rate_limit_is_429_with_retry_after(api, partner):
    partner.rate_limit = "3/m"
    partner.save()

    statuses = [api.get("/t2mobile/products").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = api.get("/t2mobile/products")
    assert response.json()["errorCode"] == "RATE_LIMITED"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_rate_limit_is_counted_per_partner(api, partner):
    partner.rate_limit = "2/m"
    partner.save()
    other = Partner.objects.create(partner_id="OTHER001", name="Other", rate_limit="2/m")
    _, other_key = api_key_create(partner=other)
    api.get("/t2mobile/products")
    api.get("/t2mobile/products")

    assert api.get("/t2mobile/products").status_code == 429
    assert client_with(f"Bearer {other_key}").get("/t2mobile/products").status_code == 200


def test_repeated_failed_auth_from_one_address_is_slowed(api, api_key, settings):
    settings.AUTH_FAILURE_RATE_LIMIT = "5/m"
    guesser = client_with("Bearer guess")

    statuses = [guesser.get("/t2mobile/products").status_code for _ in range(7)]

    assert statuses == [401] * 5 + [429] * 2
    assert int(guesser.get("/t2mobile/products")["Retry-After"]) >= 1


def test_a_valid_key_is_served_from_an_address_that_is_over_the_failure_limit(api_key, settings):
    # Given a misconfigured client behind the partner's NAT has used up the failure limit
    settings.AUTH_FAILURE_RATE_LIMIT = "5/m"
    guesser = client_with("Bearer wrong-key-from-an-old-config")
    assert [guesser.get("/t2mobile/products").status_code for _ in range(6)][-1] == 429

    # When a good client behind the same address calls with its valid key
    response = client_with(f"Bearer {api_key}").get("/t2mobile/products")

    # Then it is served, and the wrong key is still refused
    assert response.status_code == 200
    assert guesser.get("/t2mobile/products").status_code == 429


def test_behind_our_proxy_failures_count_per_caller_and_a_forged_forwarded_for_does_not_help(api_key, settings):
    settings.AUTH_FAILURE_RATE_LIMIT = "3/m"
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    proxy = {"REMOTE_ADDR": "10.0.0.2"}  # every request reaches gunicorn from nginx
    guesser = client_with("Bearer guess")

    # The guesser rotates a forged left-most entry; nginx appends the real address last.
    statuses = [
        guesser.get("/t2mobile/products", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.7", **proxy).status_code
        for i in range(5)
    ]

    assert statuses == [401] * 3 + [429] * 2
    honest = client_with(f"Bearer {api_key}")
    assert honest.get("/t2mobile/products", HTTP_X_FORWARDED_FOR="203.0.113.50", **proxy).status_code == 200
    assert honest.get("/t2mobile/products", HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 200
    assert guesser.get("/t2mobile/products", HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 429


def test_a_direct_caller_rotating_x_forwarded_for_is_still_limited(api_key, settings):
    # Given our proxy is 10.0.0.2, and a guesser reaches gunicorn directly, forging the header
    settings.AUTH_FAILURE_RATE_LIMIT = "20/m"
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    guesser = client_with("Bearer guess")

    # When it sends 30 bad keys, each with a new X-Forwarded-For
    statuses = [
        guesser.get(
            "/t2mobile/products", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}", REMOTE_ADDR="203.0.113.66"
        ).status_code
        for i in range(30)
    ]

    # Then it is limited by its own address
    assert statuses == [401] * 20 + [429] * 10


def test_behind_two_proxies_of_ours_the_caller_is_the_first_address_they_do_not_vouch_for(api_key, settings):
    settings.AUTH_FAILURE_RATE_LIMIT = "2/m"
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    guesser = client_with("Bearer guess")
    via = {"REMOTE_ADDR": "10.0.0.3"}  # nginx → internal load balancer → gunicorn

    statuses = [
        guesser.get("/t2mobile/products", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.7, 10.0.0.2", **via).status_code
        for i in range(4)
    ]

    assert statuses == [401, 401, 429, 429]
    other = guesser.get("/t2mobile/products", HTTP_X_FORWARDED_FOR="203.0.113.8, 10.0.0.2", **via)
    assert other.status_code == 401


def test_trusted_proxies_that_are_not_addresses_and_the_old_proxy_count_stop_start_up(settings, monkeypatch):
    settings.TRUSTED_PROXIES = ["nginx.internal"]
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")

    ids = [error.id for error in check_trusted_proxies()]

    assert ids == ["t2mobile.E004", "t2mobile.E005"]


@pytest.fixture
def redis_unreachable(settings):
    """The rate-limit counters' Redis refuses connections (a port nothing listens on)."""
    settings.REDIS_LIMITS_URL = f"redis://127.0.0.1:{free_port()}/0"
    redis_client.cache_clear()
    yield
    redis_client.cache_clear()
    throttling._local._counts.clear()
    redis_breaker._retry_at = 0.0
    redis_breaker._warned_at = float("-inf")


def test_while_redis_is_down_limits_are_counted_in_the_process_and_warned_once(api, partner, redis_unreachable, caplog):
    partner.rate_limit = "3/m"
    partner.save()

    with caplog.at_level("WARNING", logger="core.outage"):
        statuses = [api.get("/t2mobile/products").status_code for _ in range(5)]
        guesses = [client_with("Bearer guess").get("/t2mobile/products").status_code for _ in range(3)]

    assert statuses == [200, 200, 200, 429, 429]
    assert guesses == [401, 401, 401]
    warnings = [r for r in caplog.records if "rate limits are counted in this process" in r.getMessage()]
    assert len(warnings) == 1


# --- A partner's own rate limit: one parser for the admin and the throttle ----------------------


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [("100/m", 100, 60), ("5000/h", 5000, 3600), ("90/6s", 90, 6), ("1/d", 1, 86400), (" 20 / minute ", 20, 60)],
)
def test_the_throttle_reads_rates_of_the_documented_form(text, limit, window):
    assert parse_rate(text) == (limit, window)


@pytest.mark.parametrize("text", ["100/w", "1e3/m", "0/m", "abc", "100/0m", "-5/m", "100", "100/mango", ""])
def test_the_parser_refuses_what_is_not_a_rate_of_at_least_one(text):
    with pytest.raises(ValueError, match="100/m"):
        parse_rate(text)


@pytest.mark.parametrize("stored", ["100/w", "1e3/m", "0/m", "abc"])
def test_an_unreadable_stored_rate_limit_falls_back_to_the_setting_with_a_warning(
    api, partner, settings, caplog, stored
):
    # Given a value the admin would refuse, written straight into the database
    settings.T2MOBILE_RATE_LIMIT = "3/m"
    Partner.objects.filter(pk=partner.pk).update(rate_limit=stored)

    # When the partner calls
    with caplog.at_level(logging.WARNING, logger="partners.throttling"):
        statuses = [api.get("/t2mobile/products").status_code for _ in range(4)]

    # Then it is counted against T2MOBILE_RATE_LIMIT, never a 500, and the operators are told once
    assert statuses == [200, 200, 200, 429]
    warnings = [r for r in caplog.records if r.name == "partners.throttling" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "T2MOBILE_RATE_LIMIT" in warnings[0].getMessage()
    assert warnings[0].rate_limit == stored and warnings[0].partner_id == partner.partner_id
