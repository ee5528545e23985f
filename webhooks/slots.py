"""At most ``WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER`` delivery attempts to one partner run at once.

A partner's endpoint that starts hanging is only known to be failing once its first attempts have
timed out; until then every worker thread could be waiting on it, and every other partner's
deliveries would wait too. Capping the attempts in flight per partner below the webhooks worker's
pool size keeps threads free for the others from the first second.

The slots are a sorted set per partner in Redis (member: a token, score: when the slot lapses), taken
and released atomically by a Lua script; a worker killed mid-attempt leaves a slot that lapses with
the claim's lease. Without Redis (``make run`` on the filesystem broker) or when Redis fails, there
is no cap: deliveries must never stop because the limiter is down.
"""

from __future__ import annotations

import logging
import time
import uuid

from django.conf import settings

from t2mobile_portal.outage import redis_client

logger = logging.getLogger(__name__)

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


def _key(partner_id: int) -> str:
    return f"t2m:webhook_slots:{partner_id}"


def slot_take(*, partner_id: int, until_epoch: float) -> str | None:
    """A token when an attempt to the partner may start now (give it back with ``slot_release``);
    None when the partner already has its maximum of attempts in flight."""
    token = uuid.uuid4().hex
    client = redis_client()
    if client is None:
        return token
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
        )
    except Exception as exc:  # redis raises many types; never hold deliveries back for the limiter
        logger.warning("webhook slot limiter unavailable, attempt not capped: %s", type(exc).__name__)
        return token
    return token if taken else None


def slot_release(*, partner_id: int, token: str) -> None:
    client = redis_client()
    if client is None:
        return
    try:
        client.zrem(_key(partner_id), token)
    except Exception as exc:  # the slot lapses with its lease anyway
        logger.warning("webhook slot not released: %s", type(exc).__name__)
