"""Rate limits counted in the shared cache (Redis), so every web process sees the same count.

A fixed-window counter built on the cache's atomic ``add`` + ``incr``: DRF's own
``SimpleRateThrottle`` keeps a list per client with a read-modify-write that races across
processes. Over the limit, DRF's ``Throttled`` becomes ``429 RATE_LIMITED`` with ``Retry-After``.
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'100/m' → (100, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[:1].lower()]


@functools.cache
def redis_client():
    """One Redis client per process for the rate-limit counters and the webhook slots (None without
    REDIS_URL: the local cache)."""
    if not settings.REDIS_URL:
        return None
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


class FixedWindowCounter:
    def __init__(self, name: str, window: int):
        now = time.time()
        self.window = window
        self.window_start = int(now // window) * window
        self.key = f"t2m:rl:{name}:{self.window_start}"
        self.now = now

    def seconds_left(self) -> int:
        return max(1, int(self.window_start + self.window - self.now + 0.999))

    def hit(self) -> int:
        """Count one request in this window, atomically across processes; returns the new count."""
        client = redis_client()
        if client is None:
            cache.add(self.key, 0, timeout=self.window + 1)
            return cache.incr(self.key)
        pipe = client.pipeline(transaction=False)
        pipe.incr(self.key)
        pipe.expire(self.key, self.window + 1, nx=True)
        return int(pipe.execute()[0])

    def blocked_for(self, limit: int) -> int:
        """Seconds to wait when the count already reached ``limit``, else 0."""
        client = redis_client()
        count = int((client.get(self.key) if client is not None else cache.get(self.key)) or 0)
        return self.seconds_left() if count >= limit else 0


class PartnerRateThrottle(BaseThrottle):
    """``T2MOBILE_RATE_LIMIT`` per partner, or the partner's own ``rate_limit``."""

    def allow_request(self, request, view) -> bool:
        partner = request.user
        if partner is None:
            return True
        limit, window = parse_rate(getattr(partner, "rate_limit", "") or settings.T2MOBILE_RATE_LIMIT)
        counter = FixedWindowCounter(f"partner:{partner.pk}", window)
        self._wait = counter.seconds_left()
        return counter.hit() <= limit

    def wait(self) -> float:
        return self._wait
