"""Rate limits counted in Redis, so every web process sees the same count, with a per-process
fallback so that a Redis outage never takes the partner API down.

A fixed-window counter (``INCR`` + ``EXPIRE NX`` in one pipeline): DRF's own ``SimpleRateThrottle``
keeps a list per client with a read-modify-write that races across processes. Over the limit, DRF's
``Throttled`` becomes ``429 RATE_LIMITED`` with ``Retry-After``.

When Redis does not answer, the counters fall back to a dictionary in this process (each gunicorn
worker counts on its own, with the full limit: a caller may get up to WEB_CONCURRENCY times its
rate while Redis is down, never a 500 and never a false 429). ``redis_breaker`` logs the warning at
most once a minute per process and skips Redis for a few seconds after a failure, so that an
unreachable (not just refusing) Redis does not add its connect timeout to every request.
"""

from __future__ import annotations

import threading
import time

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from t2mobile_portal.outage import redis_breaker, redis_client
from t2mobile_portal.rates import Rate


def parse_rate(rate: str) -> tuple[int, int]:
    """'100/m' → (100, 60): the limit and its fixed window in seconds."""
    parsed = Rate.parse(rate)
    return parsed.limit, max(1, int(parsed.period_seconds))


class _LocalCounters:
    """Fixed-window counts kept in this process while Redis is unreachable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}  # key -> (expires at, count)

    def incr(self, key: str, window: int) -> int:
        now = time.monotonic()
        with self._lock:
            if len(self._counts) > 10_000:  # keys carry their window start: drop the lapsed ones
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
            expires, count = self._counts.get(key, (now + window + 1, 0))
            self._counts[key] = (expires, count + 1)
            return count + 1


_local = _LocalCounters()


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
        """Count one request in this window (across processes while Redis answers); the new count."""
        client = redis_client()
        if client is None:
            cache.add(self.key, 0, timeout=self.window + 1)
            return cache.incr(self.key)
        if redis_breaker.available():
            try:
                pipe = client.pipeline(transaction=False)
                pipe.incr(self.key)
                pipe.expire(self.key, self.window + 1, nx=True)
                return int(pipe.execute()[0])
            except redis.RedisError as exc:
                redis_breaker.failed(exc, fallback="rate limits are counted in this process")
        return _local.incr(self.key, self.window)


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
