"""The shared Zoho call budget in a real Redis: pacing, calls in flight, the day's count."""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings

from core.rates import Rate
from integrations.zoho.budget import RedisBudget, zoho_budget, zoho_calls_today, zoho_daily_usage
from integrations.zoho.errors import ZohoTransientError


def test_rates_parse_with_scaled_periods():
    assert Rate.parse("90/m") == Rate(90, 60)
    assert Rate.parse("90/6s") == Rate(90, 6)
    assert Rate.parse("5000/h").capacity == 500
    with pytest.raises(ValueError):
        Rate.parse("ninety a minute")


def test_workers_in_different_processes_share_one_bucket():
    # 20 calls per 2 s: a burst of 2 (a tenth), then one every 0.1 s, whoever asks.
    budgets = [RedisBudget(settings.REDIS_LIMITS_URL, rate=Rate.parse("20/2s"), max_concurrency=10) for _ in range(3)]
    done = []

    def worker(budget):
        for _ in range(4):
            with budget.call_slot():
                done.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(budget,)) for budget in budgets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    elapsed = max(done) - started
    assert len(done) == 12
    assert 0.9 <= elapsed < 3.0  # (12 - 2) calls at 10 per second


def test_calls_in_flight_are_capped_across_workers():
    budgets = [RedisBudget(settings.REDIS_LIMITS_URL, rate=Rate.parse("100000/m"), max_concurrency=2) for _ in range(6)]
    in_flight = []
    peak = []
    lock = threading.Lock()

    def worker(budget):
        with budget.call_slot():
            with lock:
                in_flight.append(1)
                peak.append(len(in_flight))
            time.sleep(0.15)
            with lock:
                in_flight.pop()

    threads = [threading.Thread(target=worker, args=(budget,)) for budget in budgets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(peak) == 6
    assert max(peak) == 2


def test_a_budget_that_stays_empty_gives_up_with_a_transient_error():
    budget = RedisBudget(settings.REDIS_LIMITS_URL, rate=Rate.parse("1/h"), max_concurrency=1)
    with budget.call_slot():
        pass

    with pytest.raises(ZohoTransientError) as caught:
        with budget.call_slot(max_wait=0.5):
            pass
    assert caught.value.retry_after > 3000


def test_the_days_calls_are_counted_for_health(settings):
    settings.ZOHO_RATE_LIMIT = "100000/m"
    settings.ZOHO_DAILY_LIMIT = 10

    for _ in range(8):
        with zoho_budget().call_slot():
            pass

    assert zoho_calls_today() == 8
    assert zoho_daily_usage() == {"calls": 8, "limit": 10, "share": 0.8, "warning": True, "scope": "all processes"}
