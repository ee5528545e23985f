"""The guard in ``t2mobile_portal/celery.py`` patches a private method of kombu's Redis transport
(``Channel._connparams``), for a crash reproduced with the pinned kombu on the threads pool and not
fixed upstream (issue 26, point 6). These tests fail when the pin changes, so that whoever upgrades
kombu re-checks the guard (docs/runbook.md, "The broker restarted")."""

from __future__ import annotations

import kombu
import pytest
import redis
from kombu.transport import redis as kombu_redis

import t2mobile_portal.celery  # noqa: F401  (installs the guard)

GUARDED_KOMBU = "5.7.0"


def test_kombu_is_the_version_the_guard_was_written_for():
    assert kombu.__version__ == GUARDED_KOMBU, (
        f"kombu is {kombu.__version__}, the broker-loss guard in t2mobile_portal/celery.py was written for "
        f"{GUARDED_KOMBU}: check whether Channel._connparams still reads self.connection.client and whether the "
        "crash (AttributeError 'NoneType' object has no attribute 'hostname' on a broker loss) still happens "
        "(tests/faults/test_redis_faults.py), then update or drop the guard and this pin"
    )


def test_the_guard_turns_a_closed_connection_into_a_connection_error():
    class ClosedChannel:
        class connection:  # noqa: N801  (the shape kombu's Channel reads)
            client = None

    assert getattr(kombu_redis.Channel._connparams, "_t2m_guarded", False)
    with pytest.raises(redis.exceptions.ConnectionError):
        kombu_redis.Channel._connparams(ClosedChannel())
