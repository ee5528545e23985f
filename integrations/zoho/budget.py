"""The Zoho call budget shared by every worker: a token bucket, a cap on calls in flight and a daily
count, all in Redis so that any number of processes on any number of machines draw from one budget.

Zoho allows about 100 calls a minute per organisation, 10 in flight and a daily cap by plan. A burst
of orders must wait here, in our queue, instead of being refused by Zoho:

- ``ZOHO_RATE_LIMIT`` ("90/m"; also "90/6s", "5000/h") fills the bucket. Its capacity is a tenth of
  the limit, so that within any window of the limit's length at most ``limit × 1.1`` calls go out
  (99 a minute for 90/m) even right after an idle spell, which stays under Zoho's 100.
- ``ZOHO_MAX_CONCURRENCY`` slots, each a member of a sorted set scored by its lease expiry, so a
  worker killed in the middle of a call frees its slot when the lease runs out.
- A ``Retry-After`` from Zoho pauses every worker until then (``pause``).
- Each call increments ``zoho:calls:<local date>``; ``calls_today()`` feeds health and the admin.

Redis server time drives the bucket, so clocks of different machines do not matter. Without Redis
(``make run`` on a bare machine) the same rules run in-process.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from django.conf import settings
from django.utils import timezone

from integrations.zoho.errors import ZohoTransientError

KEY_PREFIX = "t2m:zoho:"
#: Longest a caller sleeps for budget before giving up with a transient error (the task retries).
MAX_WAIT_SECONDS = 120.0
#: A call slot is held at most this long (connect + read timeout, plus margin).
SLOT_LEASE_MS = 60_000
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return paused - now end
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1])
local ts = tonumber(data[2])
if tokens == nil or ts == nil then tokens = capacity; ts = now end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / per_ms) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 60000)
return wait
"""

_SLOT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
"""

_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then redis.call('SET', KEYS[1], untl, 'PX', tonumber(ARGV[1]) + 1000) end
return untl
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'90/m' → 90 per 60 s; '90/6s' → 90 per 6 s (scaled-down budgets for benchmarks)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\w*\s*", text or "")
        if not match:
            raise ValueError(f"not a rate: {text!r} (expected e.g. 90/m)")
        count, multiple, unit = match.groups()
        return cls(int(count), (int(multiple) if multiple else 1) * _PERIOD_SECONDS[unit])

    @property
    def capacity(self) -> int:
        return max(1, self.limit // 10)

    @property
    def per_ms(self) -> float:
        return self.limit / (self.period_seconds * 1000)


def _today_key() -> str:
    return f"{KEY_PREFIX}calls:{timezone.localdate().isoformat()}"


class _Budget:
    def call_slot(self, max_wait: float = MAX_WAIT_SECONDS):
        """Context manager around one Zoho call: waits for a token and a slot, counts the call."""
        return _call_slot(self, max_wait=max_wait)


class RedisBudget(_Budget):
    def __init__(self, url: str, *, rate: Rate, max_concurrency: int):
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self.rate = rate
        self.max_concurrency = max(1, max_concurrency)
        self._bucket = self.redis.register_script(_BUCKET_LUA)
        self._slot = self.redis.register_script(_SLOT_LUA)
        self._pause = self.redis.register_script(_PAUSE_LUA)

    def _try_token(self) -> float:
        """0 when a token was taken, else seconds to wait."""
        wait_ms = self._bucket(
            keys=[f"{KEY_PREFIX}bucket", f"{KEY_PREFIX}paused_until"],
            args=[self.rate.capacity, repr(self.rate.per_ms)],
        )
        return int(wait_ms) / 1000

    def _try_slot(self, holder: str) -> bool:
        return bool(self._slot(keys=[f"{KEY_PREFIX}inflight"], args=[self.max_concurrency, holder, SLOT_LEASE_MS]))

    def _release_slot(self, holder: str) -> None:
        self.redis.zrem(f"{KEY_PREFIX}inflight", holder)

    def _count_call(self) -> None:
        key = _today_key()
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 3 * 86400)
        pipe.execute()

    def pause(self, seconds: float) -> None:
        self._pause(keys=[f"{KEY_PREFIX}paused_until"], args=[max(1, int(seconds * 1000))])

    def calls_today(self) -> int:
        return int(self.redis.get(_today_key()) or 0)


class LocalBudget(_Budget):
    """The same rules for one process, when there is no Redis (``make run`` without a server)."""

    def __init__(self, *, rate: Rate, max_concurrency: int):
        self.rate = rate
        self.max_concurrency = max(1, max_concurrency)
        self._lock = threading.Lock()
        self._tokens = float(rate.capacity)
        self._ts = time.monotonic()
        self._paused_until = 0.0
        self._inflight: set[str] = set()
        self._day = ""
        self._count = 0

    def _try_token(self) -> float:
        with self._lock:
            now = time.monotonic()
            if self._paused_until > now:
                return self._paused_until - now
            per_s = self.rate.per_ms * 1000
            self._tokens = min(self.rate.capacity, self._tokens + (now - self._ts) * per_s)
            self._ts = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / per_s

    def _try_slot(self, holder: str) -> bool:
        with self._lock:
            if len(self._inflight) < self.max_concurrency:
                self._inflight.add(holder)
                return True
            return False

    def _release_slot(self, holder: str) -> None:
        with self._lock:
            self._inflight.discard(holder)

    def _count_call(self) -> None:
        with self._lock:
            day = timezone.localdate().isoformat()
            if day != self._day:
                self._day, self._count = day, 0
            self._count += 1

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def calls_today(self) -> int:
        return self._count if self._day == timezone.localdate().isoformat() else 0


@contextmanager
def _call_slot(budget: _Budget, *, max_wait: float) -> Iterator[None]:
    deadline = time.monotonic() + max_wait
    while True:
        wait = budget._try_token()
        if wait <= 0:
            break
        if time.monotonic() + wait > deadline:
            raise ZohoTransientError("Zoho call budget exhausted; retry later", retry_after=wait)
        time.sleep(min(wait, 1.0))
    holder = uuid.uuid4().hex
    while not budget._try_slot(holder):
        if time.monotonic() > deadline:
            raise ZohoTransientError("too many Zoho calls in flight; retry later", retry_after=5)
        time.sleep(0.05)
    try:
        budget._count_call()
        yield
    finally:
        budget._release_slot(holder)


_budgets: dict[tuple, RedisBudget | LocalBudget] = {}
_budgets_lock = threading.Lock()


def zoho_budget() -> RedisBudget | LocalBudget:
    """The process's budget for the current settings (tests and benchmarks change them)."""
    config = (settings.REDIS_URL, settings.ZOHO_RATE_LIMIT, settings.ZOHO_MAX_CONCURRENCY)
    with _budgets_lock:
        budget = _budgets.get(config)
        if budget is None:
            rate = Rate.parse(settings.ZOHO_RATE_LIMIT)
            if settings.REDIS_URL:
                budget = RedisBudget(settings.REDIS_URL, rate=rate, max_concurrency=settings.ZOHO_MAX_CONCURRENCY)
            else:
                budget = LocalBudget(rate=rate, max_concurrency=settings.ZOHO_MAX_CONCURRENCY)
            _budgets[config] = budget
        return budget


def zoho_calls_today() -> int:
    """Zoho calls made today (local date) by all workers; None-safe for the health endpoint."""
    try:
        return zoho_budget().calls_today()
    except redis.RedisError:
        return 0
