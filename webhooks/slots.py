"""At most ``WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER`` delivery attempts to one partner run at once.

A partner's endpoint that starts hanging is only known to be failing once its first attempts have
timed out; until then every worker thread could be waiting on it, and every other partner's
deliveries would wait too. Capping the attempts in flight per partner below the webhooks worker's
pool size keeps threads free for the others from the first second.

The slots are a sorted set per partner in Redis (member: a token and a lane number, score: when the
slot lapses), taken and released atomically by a Lua script: one attempt takes one slot, a batch
takes one per lane it sends on, in one call. A worker killed mid-attempt leaves slots that lapse
with the claim's lease. Without Redis (``make run`` on the filesystem broker) or when Redis fails,
there is no cap: deliveries must never stop because the limiter is down.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

from core.outage import redis_client

logger = logging.getLogger(__name__)

# KEYS[1] the partner's set; ARGV: now, cap, lapse (epoch), token, key expiry (s), slots wanted.
# Returns how many slots were taken (0 to wanted); their members are "<token>:1" … "<token>:n".
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
local n = math.min(free, tonumber(ARGV[6]))
if n <= 0 then
  return 0
end
for i = 1, n do
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4] .. ':' .. i)
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return n
"""


@dataclass(frozen=True)
class Slots:
    """Slots taken for attempts to one partner: ``count`` may start at once (0: none may now)."""

    partner_id: int
    token: str
    count: int
    capped: bool = True  # False when the limiter was unavailable: nothing to give back

    def __bool__(self) -> bool:
        return self.count > 0


def slots_take(*, partner_id: int, until_epoch: float, wanted: int = 1) -> Slots:
    """Up to ``wanted`` slots for attempts to the partner, lapsing at ``until_epoch`` (give them back
    with ``slots_release``); fewer, or none, when the partner already has attempts in flight."""
    token = uuid.uuid4().hex
    client = redis_client()
    if client is None:
        return Slots(partner_id, token, wanted, capped=False)
    now = time.time()
    try:
        taken = client.eval(
            _TAKE,
            1,
            _key(partner_id),
            now,
            settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER,
            max(until_epoch, now + 1),
            token,
            int(max(until_epoch - now, 1)) + 60,
            wanted,
        )
    except Exception as exc:  # redis raises many types; never hold deliveries back for the limiter
        logger.warning("webhook slot limiter unavailable, attempt not capped: %s", type(exc).__name__)
        return Slots(partner_id, token, wanted, capped=False)
    return Slots(partner_id, token, int(taken))


def slots_release(slots: Slots) -> None:
    client = redis_client()
    if client is None or not slots.capped or not slots.count:
        return
    try:
        client.zrem(_key(slots.partner_id), *(f"{slots.token}:{i}" for i in range(1, slots.count + 1)))
    except Exception as exc:  # the slots lapse with their lease anyway
        logger.warning("webhook slot not released: %s", type(exc).__name__)


def _key(partner_id: int) -> str:
    return f"t2m:webhook_slots:{partner_id}"
