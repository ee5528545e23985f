"""The cap on attempts in flight per partner (webhooks/slots.py), against the test Redis."""

import time

import pytest
import redis

from webhooks import slots


def test_a_partner_gets_at_most_its_cap_and_a_released_or_lapsed_slot_is_free_again(settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 2
    soon = time.time() + 60

    first, second = slots.slot_take(partner_id=7, until_epoch=soon), slots.slot_take(partner_id=7, until_epoch=soon)

    assert first and second and slots.slot_take(partner_id=7, until_epoch=soon) is None
    assert slots.slot_take(partner_id=8, until_epoch=soon)  # another partner has slots of its own
    slots.slot_release(partner_id=7, token=first)
    assert slots.slot_take(partner_id=7, until_epoch=soon)
    # A worker killed mid-attempt never releases: its slot lapses with the claim's lease.
    slots.slot_take(partner_id=9, until_epoch=time.time() + 0.5)
    slots.slot_take(partner_id=9, until_epoch=time.time() + 0.5)
    assert slots.slot_take(partner_id=9, until_epoch=soon) is None
    time.sleep(1.1)  # (a slot lives at least a second)
    assert slots.slot_take(partner_id=9, until_epoch=soon)


def test_deliveries_are_not_held_back_when_the_limiter_s_redis_fails(monkeypatch):
    class Down:
        def eval(self, *args):
            raise redis.ConnectionError("refused")

    monkeypatch.setattr(slots, "redis_client", lambda: Down())

    assert slots.slot_take(partner_id=7, until_epoch=time.time() + 60)


pytestmark = pytest.mark.usefixtures("clean_redis")
