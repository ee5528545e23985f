"""A production install is ``pip install -r requirements.txt`` and nothing else (operations.md):
every Procfile process starts from it, stays up, and the service answers health ``ok``."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.faults.system import PRODUCTION_VENV, wait_for

pytestmark = [pytest.mark.slow]


def test_requirements_txt_alone_is_a_complete_install():
    check = subprocess.run([PRODUCTION_VENV / "bin" / "python", "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Nothing of the dev requirements is there to hide a missing runtime package.
    for dev_only in ("pytest", "responses", "schemathesis", "playwright"):
        found = subprocess.run([PRODUCTION_VENV / "bin" / "python", "-m", "pip", "show", dev_only], capture_output=True)
        assert found.returncode != 0, f"{dev_only} is in the production venv"


def test_every_procfile_process_starts_from_the_production_install_and_health_is_ok(system, product):
    # Given the release step and every process of the Procfile, started from .venv-prod
    system.start()
    assert set(system.processes) == {name for name in system.procfile if name != "release"}

    # When they have had time to fail at start-up (an import error, a missing transport)
    time.sleep(5)

    # Then none has exited, health is ok, and an order goes all the way to a verified webhook
    assert system.dead() == {}
    health = system.health()
    assert health["status"] == "ok", health
    assert health["checks"]["broker"] == "ok" and health["checks"]["cache"] == "ok"
    assert system.order("T2M-PROD-1").status_code == 202
    [event_id] = wait_for(lambda: system.receiver.ids_of("ORDER_FULFILLED"), timeout=60, what="ORDER_FULFILLED")
    assert system.get("/t2mobile/orders/T2M-PROD-1").json()["status"] == "FULFILLED"
    assert system.dead() == {}
