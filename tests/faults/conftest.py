"""Fixtures of the fault tests: the whole service as production runs it (``system.py``)."""

from __future__ import annotations

import pytest

from tests.faults.system import System


@pytest.fixture
def system(transactional_db, tmp_path, request):
    """The Procfile's processes with one Redis that keeps its data across a stop (append-only)."""
    service = System(tmp_path, redis_persistent=True)
    yield service
    _stop(service, request)


@pytest.fixture
def system_losing_redis(transactional_db, tmp_path, request):
    """The same, with a Redis that keeps nothing: after a restart every queue is empty."""
    service = System(tmp_path, redis_persistent=False)
    yield service
    _stop(service, request)


def _stop(service: System, request) -> None:
    report = getattr(request.node, "rep_call", None)
    try:
        service.stop()
    finally:
        if report is not None and report.failed:
            print(service.logs_text())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
