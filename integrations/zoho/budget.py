"""The Zoho call budget shared by every worker: a token bucket, a cap on calls in flight and a daily
count, all in Redis so that any number of processes on any number of machines draw from one budget.

Zoho allows about 100 calls a minute per organisation, 10 in flight and a daily cap by plan. A burst
of orders must wait here, in our queue, instead of being refused by Zoho:

- ``ZOHO_RATE_LIMIT`` ("90/m"; also "90/6s", "5000/h") fills the bucket. Its capacity is a tenth of
  the limit, so that within any window of the limit's length at most ``limit × 1.1`` calls go out
  (99 a minute for 90/m) even right after an idle spell, which stays under Zoho's 100.
- ``ZOHO_MAX_CONCURRENCY`` slots, each a member of a sorted set scored by its lease expiry, so a
  worker killed in the middle of a call frees its slot when the lease runs out.
- A limit answer from Zoho pauses every worker (``pause``, with its reason): until its
  ``Retry-After``, else for the shortest window Zoho documents a limit for (60 s), doubling with each
  limit answer that follows (``limit_backoff``: 60 s, 2, 4, 8, 16 min, then 30 min) and forgotten
  after 10 quiet minutes. Zoho documents none of its limit codes (44, 45 and 1070 are what others
  report, and they disagree on which is the daily one), so no limit answer pauses for a day at once:
  only our own count of the day's calls does (below).
- Each call is counted in ``zoho:calls:<date>`` when its token is taken, atomically with the check
  against ``ZOHO_DAILY_LIMIT``: at the cap, no call goes out until the next day. The day is the
  organisation's, in the time zone Zoho gives for it (``GET /organizations``), else ``TIME_ZONE``.
- A wait longer than ``SLEEP_AT_MOST_SECONDS`` (a pause, the daily cap) is not slept in a worker:
  ``ZohoWaitError`` says how long, and the order waits in the database (Zoho's wait, not the
  order's: it does not use up its retry schedule). ``paused()`` tells health and the admin why.

Redis server time drives the bucket, so clocks of different machines do not matter. Without Redis
(``make run`` on a bare machine) the same rules run in-process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from core.rates import Rate
from integrations.zoho.errors import ZohoTransientError, ZohoWaitError

KEY_PREFIX = "t2m:zoho:"
#: Longest a caller sleeps for budget before giving up with a transient error (the task retries).
MAX_WAIT_SECONDS = 120.0
#: A token due within this long is waited for in the worker; a longer wait becomes ``ZohoWaitError``.
SLEEP_AT_MOST_SECONDS = 5.0
#: Without a Retry-After, the per-minute and concurrency limit answers pause every worker this long.
LIMIT_PAUSE_SECONDS = 60.0
#: Limit answers in a row double the pause up to this; a quiet spell this long forgets them.
LIMIT_PAUSE_MAX_SECONDS = 1800.0
LIMIT_STRIKES_FORGET_SECONDS = 600
REASON_DAILY_CAP = "ZOHO_DAILY_LIMIT reached: Zoho calls wait for the next day"
#: A call slot is held at most this long (connect + read timeout, plus margin).
SLOT_LEASE_MS = 60_000

_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return paused - now end
local daily_limit = tonumber(ARGV[3])
if daily_limit > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= daily_limit then
  return tonumber(ARGV[4])
end
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
if wait == 0 then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 3 * 86400)
end
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
if untl > cur then
  redis.call('SET', KEYS[1], untl, 'PX', tonumber(ARGV[1]) + 1000)
  redis.call('SET', KEYS[2], ARGV[2], 'PX', tonumber(ARGV[1]) + 1000)
end
return untl
"""

_PAUSED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl <= now then return false end
return {untl - now, redis.call('GET', KEYS[2]) or ''}
"""


#: The organisation's time zone as Zoho gave it (``GET /organizations``, kept a day by the catalogue
#: sync: ``client.zoho_day_zone_refresh``); read by every process at most once a minute.
DAY_ZONE_CACHE_KEY = "zoho:organization_time_zone"
DAY_ZONE_CACHE_SECONDS = 86400
_day_zone_memo: dict = {"zone": None, "until": 0.0}


def zoho_day_zone() -> ZoneInfo:
    """The zone whose midnight starts Zoho's day: the organisation's, else ``TIME_ZONE``."""
    now = time.monotonic()
    if _day_zone_memo["until"] > now and _day_zone_memo["zone"] is not None:
        return _day_zone_memo["zone"]
    try:
        name = cache.get(DAY_ZONE_CACHE_KEY)
    except Exception:  # the cache is down: the setting
        name = None
    try:
        zone = ZoneInfo(name) if name else ZoneInfo(settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(settings.TIME_ZONE)
    _day_zone_memo.update(zone=zone, until=now + 60)
    return zone


def zoho_day_zone_forget() -> None:
    """This process reads the zone again at its next call (the refresh just stored a new one)."""
    _day_zone_memo.update(zone=None, until=0.0)


def _zoho_today() -> str:
    return timezone.now().astimezone(zoho_day_zone()).date().isoformat()


def _today_key() -> str:
    return f"{KEY_PREFIX}calls:{_zoho_today()}"


def seconds_until_tomorrow() -> float:
    """Until the next midnight of Zoho's day (``zoho_day_zone``), when our daily count starts again."""
    zone = zoho_day_zone()
    now = timezone.now().astimezone(zone)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), dt_time(0), tzinfo=zone)
    return max(1.0, (tomorrow - now).total_seconds())


@dataclass(frozen=True)
class Pause:
    """Why no Zoho call goes out now, and for how long."""

    reason: str
    seconds: float


def _backoff(strikes: int) -> float:
    return min(LIMIT_PAUSE_SECONDS * 2 ** max(0, strikes - 1), LIMIT_PAUSE_MAX_SECONDS)


class _Budget:
    def call_slot(self, max_wait: float = MAX_WAIT_SECONDS):
        """Context manager around one Zoho call: waits for a token and a slot, counts the call."""
        return _call_slot(self, max_wait=max_wait)

    def paused(self) -> Pause | None:
        """The pause in force (a limit answer, or the daily cap reached), or None."""
        pause = self._pause_in_force()
        if pause is not None:
            return pause
        limit = settings.ZOHO_DAILY_LIMIT
        if limit and self.calls_today() >= limit:
            return Pause(reason=REASON_DAILY_CAP, seconds=seconds_until_tomorrow())
        return None


class RedisBudget(_Budget):
    def __init__(self, url: str, *, rate: Rate, max_concurrency: int):
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self.rate = rate
        self.max_concurrency = max(1, max_concurrency)
        self._bucket = self.redis.register_script(_BUCKET_LUA)
        self._slot = self.redis.register_script(_SLOT_LUA)
        self._pause = self.redis.register_script(_PAUSE_LUA)
        self._paused = self.redis.register_script(_PAUSED_LUA)

    def _try_token(self) -> float:
        """0 when a token was taken (and the call counted), else seconds to wait."""
        wait_ms = self._bucket(
            keys=[f"{KEY_PREFIX}bucket", f"{KEY_PREFIX}paused_until", _today_key()],
            args=[
                self.rate.capacity,
                repr(self.rate.per_ms),
                settings.ZOHO_DAILY_LIMIT or 0,
                int(seconds_until_tomorrow() * 1000),
            ],
        )
        return int(wait_ms) / 1000

    def _try_slot(self, holder: str) -> bool:
        return bool(self._slot(keys=[f"{KEY_PREFIX}inflight"], args=[self.max_concurrency, holder, SLOT_LEASE_MS]))

    def _release_slot(self, holder: str) -> None:
        self.redis.zrem(f"{KEY_PREFIX}inflight", holder)

    def pause(self, seconds: float, reason: str = "Zoho asked us to wait") -> None:
        self._pause(
            keys=[f"{KEY_PREFIX}paused_until", f"{KEY_PREFIX}paused_reason"],
            args=[max(1, int(seconds * 1000)), reason],
        )

    def _pause_in_force(self) -> Pause | None:
        found = self._paused(keys=[f"{KEY_PREFIX}paused_until", f"{KEY_PREFIX}paused_reason"])
        if not found:
            return None
        left_ms, reason = found
        return Pause(reason=reason.decode() if isinstance(reason, bytes) else str(reason), seconds=int(left_ms) / 1000)

    def calls_today(self) -> int:
        return int(self.redis.get(_today_key()) or 0)

    def limit_backoff(self) -> float:
        """The pause for a limit answer without Retry-After: 60 s for the first in a while, doubling."""
        key = f"{KEY_PREFIX}limit_strikes"
        strikes = int(self.redis.incr(key))
        seconds = _backoff(strikes)
        self.redis.expire(key, int(seconds) + LIMIT_STRIKES_FORGET_SECONDS)
        return seconds


class LocalBudget(_Budget):
    """The same rules for one process, when there is no Redis (``make run`` without a server)."""

    def __init__(self, *, rate: Rate, max_concurrency: int):
        self.rate = rate
        self.max_concurrency = max(1, max_concurrency)
        self._lock = threading.Lock()
        self._tokens = float(rate.capacity)
        self._ts = time.monotonic()
        self._paused_until = 0.0
        self._paused_reason = ""
        self._inflight: set[str] = set()
        self._day = ""
        self._count = 0
        self._strikes = 0
        self._strikes_forgotten_at = 0.0

    def _try_token(self) -> float:
        with self._lock:
            now = time.monotonic()
            if self._paused_until > now:
                return self._paused_until - now
            day = _zoho_today()
            if day != self._day:
                self._day, self._count = day, 0
            if settings.ZOHO_DAILY_LIMIT and self._count >= settings.ZOHO_DAILY_LIMIT:
                return seconds_until_tomorrow()
            per_s = self.rate.per_ms * 1000
            self._tokens = min(self.rate.capacity, self._tokens + (now - self._ts) * per_s)
            self._ts = now
            if self._tokens >= 1:
                self._tokens -= 1
                self._count += 1
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

    def pause(self, seconds: float, reason: str = "Zoho asked us to wait") -> None:
        with self._lock:
            until = time.monotonic() + seconds
            if until > self._paused_until:
                self._paused_until, self._paused_reason = until, reason

    def _pause_in_force(self) -> Pause | None:
        with self._lock:
            left = self._paused_until - time.monotonic()
            return Pause(reason=self._paused_reason, seconds=left) if left > 0 else None

    def calls_today(self) -> int:
        return self._count if self._day == _zoho_today() else 0

    def limit_backoff(self) -> float:
        with self._lock:
            now = time.monotonic()
            if now > self._strikes_forgotten_at:
                self._strikes = 0
            self._strikes += 1
            seconds = _backoff(self._strikes)
            self._strikes_forgotten_at = now + seconds + LIMIT_STRIKES_FORGET_SECONDS
            return seconds


@contextmanager
def _call_slot(budget: _Budget, *, max_wait: float) -> Iterator[None]:
    deadline = time.monotonic() + max_wait
    while True:
        wait = budget._try_token()
        if wait <= 0:
            break
        if wait > SLEEP_AT_MOST_SECONDS:
            pause = budget.paused()
            reason = pause.reason if pause is not None else "Zoho call budget exhausted"
            raise ZohoWaitError(f"Zoho calls paused: {reason}", retry_after=wait)
        if time.monotonic() + wait > deadline:
            raise ZohoWaitError("Zoho call budget exhausted; retry later", retry_after=wait)
        time.sleep(min(wait, 1.0))
    holder = uuid.uuid4().hex
    while not budget._try_slot(holder):
        if time.monotonic() > deadline:
            raise ZohoTransientError("too many Zoho calls in flight; retry later", retry_after=5)
        time.sleep(0.05)
    try:
        yield
    finally:
        budget._release_slot(holder)


_budgets: dict[tuple, RedisBudget | LocalBudget] = {}
_budgets_lock = threading.Lock()


def zoho_budget() -> RedisBudget | LocalBudget:
    """The process's budget for the current settings (tests and benchmarks change them)."""
    url = settings.REDIS_LIMITS_URL
    config = (url, settings.ZOHO_RATE_LIMIT, settings.ZOHO_MAX_CONCURRENCY)
    with _budgets_lock:
        budget = _budgets.get(config)
        if budget is None:
            rate = Rate.parse(settings.ZOHO_RATE_LIMIT)
            if url:
                budget = RedisBudget(url, rate=rate, max_concurrency=settings.ZOHO_MAX_CONCURRENCY)
            else:
                budget = LocalBudget(rate=rate, max_concurrency=settings.ZOHO_MAX_CONCURRENCY)
            _budgets[config] = budget
        return budget


def zoho_paused() -> Pause | None:
    """For health and the admin; None when Redis cannot say."""
    try:
        return zoho_budget().paused()
    except redis.RedisError:
        return None


def zoho_calls_today() -> int:
    """Zoho calls made today (local date) by all workers; None-safe for the health endpoint."""
    try:
        return zoho_budget().calls_today()
    except redis.RedisError:
        return 0


def zoho_usage_shared() -> bool:
    """Whether the day's count is every process's (Redis), rather than this process's alone (no
    ``REDIS_URL``: each process counts only its own calls, so another's read would be a false 0)."""
    return isinstance(zoho_budget(), RedisBudget)


def zoho_daily_usage() -> dict:
    """Today's Zoho calls against ``ZOHO_DAILY_LIMIT``; ``warning`` from 80 % (health). ``scope`` is
    ``"all processes"``, or ``"per process"`` when each counts alone (then ``calls`` is only this
    process's own count and says nothing of the workers')."""
    calls = zoho_calls_today()
    limit = settings.ZOHO_DAILY_LIMIT
    share = calls / limit if limit else 0.0
    scope = "all processes" if zoho_usage_shared() else "per process"
    return {"calls": calls, "limit": limit, "share": round(share, 4), "warning": share >= 0.8, "scope": scope}
