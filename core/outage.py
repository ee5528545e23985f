"""A per-process circuit breaker for Redis, used where the web path must not wait for it.

After a failed call, callers skip Redis for ``retry_seconds`` and use their fallback (counters in
this process, the database), so that an unreachable Redis (a connect timeout, not just a refused
connection) does not add seconds to every request. The first failure is logged as a warning, and
again at most once per ``warn_every_seconds`` while the outage lasts.

``redis_client()`` is the one direct Redis client of a process for the limits role (rate-limit
counters, webhook slots: ``REDIS_LIMITS_URL``); the cache and the broker have their own.
"""

from __future__ import annotations

import functools
import logging
import threading
import time

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


class OutageBreaker:
    def __init__(self, name: str, *, retry_seconds: float = 5.0, warn_every_seconds: float = 60.0):
        self.name = name
        self.retry_seconds = retry_seconds
        self.warn_every_seconds = warn_every_seconds
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._warned_at = float("-inf")

    def available(self) -> bool:
        """False for ``retry_seconds`` after a failure: use the fallback without trying."""
        return time.monotonic() >= self._retry_at

    def failed(self, exc: BaseException, *, fallback: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._retry_at = now + self.retry_seconds
            warn = now - self._warned_at >= self.warn_every_seconds
            if warn:
                self._warned_at = now
        if warn:
            logger.warning("%s unreachable (%s): %s until it answers", self.name, type(exc).__name__, fallback)


#: The one Redis of this process: cache, limits and broker are databases of one server by default.
redis_breaker = OutageBreaker("Redis")


@functools.cache
def redis_client() -> redis.Redis | None:
    """One Redis client per process for the rate-limit counters and the webhook slots (None without
    REDIS_URL: the in-process limits cache)."""
    if not settings.REDIS_LIMITS_URL:
        return None
    return redis.Redis.from_url(settings.REDIS_LIMITS_URL, socket_connect_timeout=2, socket_timeout=2)
