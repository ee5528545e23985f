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

import logging
import threading
import time

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from core.outage import redis_breaker, redis_client
from core.rates import Rate
from core.redis_roles import limits

logger = logging.getLogger(__name__)


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
            limits.add(self.key, 0, timeout=self.window + 1)
            return limits.incr(self.key)
        if redis_breaker.available():
            try:
                pipe = client.pipeline(transaction=False)
                pipe.incr(self.key)
                pipe.expire(self.key, self.window + 1, nx=True)
                return int(pipe.execute()[0])
            except redis.RedisError as exc:
                redis_breaker.failed(exc, fallback="rate limits are counted in this process")
        return _local.incr(self.key, self.window)


class _WarnedOnce:
    """The (partner, stored value) pairs this process has already warned about."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[tuple[int, str]] = set()

    def first(self, key: tuple[int, str]) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) > 1_000:
                self._seen.clear()
            self._seen.add(key)
            return True


_warned = _WarnedOnce()


def partner_rate(partner) -> tuple[int, int]:
    """The partner's own ``rate_limit``, or ``T2MOBILE_RATE_LIMIT`` when it has none.

    The admin refuses a value ``Rate.parse`` cannot read (``partners.models.rate_limit_validator``),
    but a row written another way may hold one: that partner is then counted against the setting,
    with a warning once per process and value, rather than answered with a 500 on every request."""
    own = getattr(partner, "rate_limit", "") or ""
    if own:
        try:
            return parse_rate(own)
        except ValueError:
            if _warned.first((partner.pk, own)):
                logger.warning(
                    "partner rate limit unreadable; T2MOBILE_RATE_LIMIT applies",
                    extra={"partner_id": partner.partner_id, "rate_limit": own},
                )
    return parse_rate(settings.T2MOBILE_RATE_LIMIT)


class PartnerRateThrottle(BaseThrottle):
    """``T2MOBILE_RATE_LIMIT`` per partner, or the partner's own ``rate_limit`` (``partner_rate``)."""

    def allow_request(self, request, view) -> bool:
        partner = request.user
        if partner is None:
            return True
        limit, window = partner_rate(partner)
        counter = FixedWindowCounter(f"partner:{partner.pk}", window)
        self._wait = counter.seconds_left()
        return counter.hit() <= limit

    def wait(self) -> float:
        return self._wait
