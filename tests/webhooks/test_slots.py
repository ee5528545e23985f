"""The cap on attempts in flight per partner (webhooks/slots.py), against the test Redis."""

import time

import pytest
import redis

from webhooks import slots


def test_a_partner_gets_at_most_its_cap_and_a_released_or_lapsed_slot_is_free_again(settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 2
    soon = time.time() + 60

    first, second = slots.slots_take(partner_id=7, until_epoch=soon), slots.slots_take(partner_id=7, until_epoch=soon)

    assert first and second and not slots.slots_take(partner_id=7, until_epoch=soon)
    assert slots.slots_take(partner_id=8, until_epoch=soon)  # another partner has slots of its own
    slots.slots_release(first)
    assert slots.slots_take(partner_id=7, until_epoch=soon)
    # A worker killed mid-attempt never releases: its slot lapses with the claim's lease.
    slots.slots_take(partner_id=9, until_epoch=time.time() + 0.5)
    slots.slots_take(partner_id=9, until_epoch=time.time() + 0.5)
    assert not slots.slots_take(partner_id=9, until_epoch=soon)
    time.sleep(1.1)  # (a slot lives at least a second)
    assert slots.slots_take(partner_id=9, until_epoch=soon)


def test_a_batch_gets_as_many_slots_as_are_free_and_gives_them_all_back(settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = 8
    soon = time.time() + 60
    single = slots.slots_take(partner_id=7, until_epoch=soon)

    batch = slots.slots_take(partner_id=7, until_epoch=soon, wanted=20)
    none_left = slots.slots_take(partner_id=7, until_epoch=soon, wanted=3)
    slots.slots_release(batch)
    after = slots.slots_take(partner_id=7, until_epoch=soon, wanted=20)

    assert (single.count, batch.count, none_left.count, after.count) == (1, 7, 0, 7)


def test_deliveries_are_not_held_back_when_the_limiter_s_redis_fails(monkeypatch):
    class Down:
        def eval(self, *args):
            raise redis.ConnectionError("refused")

    monkeypatch.setattr(slots, "redis_client", lambda: Down())

    taken = slots.slots_take(partner_id=7, until_epoch=time.time() + 60, wanted=4)

    assert taken.count == 4


pytestmark = pytest.mark.usefixtures("clean_redis")
