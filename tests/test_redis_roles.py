"""Broker, cache and limits on their own Redis databases: ``cache.clear()`` (FLUSHDB) drops the cache
and nothing else, and without a shared Redis the Zoho usage says it is counted per process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from core.outage import redis_client
from core.redis_roles import limits, redis_caches, redis_role_urls
from integrations.zoho.budget import zoho_budget, zoho_daily_usage, zoho_usage_shared
from orders.queueing import QUEUED_MARKER_KEY, order_enqueue
from partners.throttling import FixedWindowCounter
from t2mobile_portal.health import health_report
from t2mobile_portal.staff_groups import SUPPORT_GROUP
from tests.admin.conftest import staff_client
from tests.admin.test_catalogue_and_overview import figure
from tests.factories import OrderFactory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_one_redis_url_gives_three_databases_each_overridable():
    assert redis_role_urls("redis://:secret@redis.internal:6379/0") == {
        "broker": "redis://:secret@redis.internal:6379/0",
        "cache": "redis://:secret@redis.internal:6379/1",
        "limits": "redis://:secret@redis.internal:6379/2",
    }
    assert redis_role_urls("rediss://h:6380")["limits"] == "rediss://h:6380/2"  # no number: database 0
    assert redis_role_urls("unix:///run/redis.sock?db=4")["cache"] == "unix:///run/redis.sock?db=5"
    given = redis_role_urls("redis://h/3", cache="redis://lru-cache:6379/0")
    assert given == {"broker": "redis://h/3", "cache": "redis://lru-cache:6379/0", "limits": "redis://h/5"}
    assert redis_role_urls("") == {"broker": "", "cache": "", "limits": ""}


def test_a_database_number_leaving_no_room_for_the_other_roles_is_refused_unless_they_are_given():
    assert redis_role_urls("redis://h/13")["limits"] == "redis://h/15"
    with pytest.raises(ImproperlyConfigured, match=r"or set REDIS_LIMITS_URL\.$"):
        redis_role_urls("redis://h/14")
    with pytest.raises(ImproperlyConfigured, match="or set REDIS_CACHE_URL, REDIS_LIMITS_URL"):
        redis_role_urls("redis://h/15", broker="redis://h/15")
    assert redis_role_urls("redis://h/14", limits="redis://h/0")["cache"] == "redis://h/15"
    assert redis_role_urls("redis://h/15", cache="redis://h/0", limits="redis://h/1")["broker"] == "redis://h/15"


def test_start_up_stops_with_a_clear_message_on_such_a_redis_url():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings_test", "REDIS_URL": "redis://h:6379/14"}
    env.pop("REDIS_CACHE_URL", None)
    env.pop("REDIS_LIMITS_URL", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "REDIS_URL names Redis database 14" in last and "Use a database from 0 to 13" in last


@pytest.mark.django_db(transaction=True)
def test_clearing_the_cache_keeps_the_queued_job_the_rate_limit_the_budget_and_the_marker(partner, clean_redis):
    # Given a provisioning job published to the broker with no worker to take it, a rate-limit
    # count, a Zoho call counted and a cached value
    order = OrderFactory(partner=partner)
    assert order_enqueue(order.pk)
    assert clean_redis.llen("provisioning") == 1
    counter = "redis-roles-test"
    assert [FixedWindowCounter(counter, 60).hit() for _ in range(3)] == [1, 2, 3]
    with zoho_budget().call_slot():
        pass
    calls = zoho_budget().calls_today()
    cache.set("a-true-cache-entry", "value", 600)

    # When staff or a deploy clears the cache
    cache.clear()

    # Then the cache is empty, and nothing else is
    assert cache.get("a-true-cache-entry") is None
    assert clean_redis.llen("provisioning") == 1
    assert limits.get(QUEUED_MARKER_KEY.format(order_pk=order.pk)) == 1
    assert FixedWindowCounter(counter, 60).hit() == 4
    assert zoho_budget().calls_today() == calls >= 1


@pytest.fixture
def no_shared_redis(settings):
    """``REDIS_URL=`` (``make run`` on a bare machine): the cache and the limits in each process."""
    settings.REDIS_URL = settings.REDIS_CACHE_URL = settings.REDIS_LIMITS_URL = ""
    settings.CACHES = redis_caches(cache_url="", limits_url="")
    redis_client.cache_clear()
    yield
    redis_client.cache_clear()


def test_with_a_shared_redis_the_zoho_usage_is_every_processs(db):
    assert zoho_usage_shared() is True
    assert zoho_daily_usage()["scope"] == "all processes"


def test_without_a_shared_redis_health_and_the_admin_say_per_process_instead_of_a_false_zero(
    db, no_shared_redis, django_user_model
):
    assert zoho_usage_shared() is False
    assert health_report()["checks"]["zohoBudget"]["scope"] == "per process"

    support = staff_client(django_user_model, username="sandra-support", group=SUPPORT_GROUP)
    page = support.get(reverse("admin:index")).content.decode()

    assert figure(page, "Zoho API calls today") == "counted per process (no REDIS_URL): not shown here"
