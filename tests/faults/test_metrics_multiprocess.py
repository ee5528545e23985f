"""/metrics sums every process that shares PROMETHEUS_MULTIPROC_DIR: the Procfile's web (gunicorn,
two workers) and provisioning worker (Celery prefork), as production runs them; a worker killed by
SIGKILL takes nothing of the counters with it."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.system import System
from tests.zoho_fixtures import wait_for

pytestmark = pytest.mark.slow

TOKEN = "scrape-secret-multiprocess"
REQUESTS = 24


def scrape(system: System) -> dict[str, float]:
    """Each counter's samples summed over their labels: name → total."""
    response = requests.get(f"{system.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
    assert response.status_code == 200, response.text[:300]
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def live_requests(system: System) -> float:
    response = requests.get(f"{system.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "t2m_http_requests_total" and sample.labels["view"] == "health-live"
    )


def web_workers(system: System) -> list[int]:
    return system.processes["web"].children()


def test_metrics_sum_every_gunicorn_and_celery_process_and_survive_a_killed_worker(system, product, tmp_path):
    directory = tmp_path / "prometheus"  # made by the processes themselves (instruments.py)
    service_env = system.env
    system.env = lambda: {**service_env(), "PROMETHEUS_MULTIPROC_DIR": str(directory), "METRICS_TOKEN": TOKEN}
    system.start("web", "worker")
    assert len(web_workers(system)) == 2

    def hit(_):
        with requests.Session() as session:  # a connection of its own: either worker may take it
            return session.get(f"{system.base}/t2mobile/health/live", timeout=10).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(hit, range(REQUESTS))) == {200}
    assert live_requests(system) == REQUESTS
    writers = {path.stem.rsplit("_", 1)[1] for path in Path(directory).glob("counter_*.db")}
    assert len(writers & {str(pid) for pid in web_workers(system)}) == 2, writers  # both workers counted

    assert system.order("T2M-METRICS-1").status_code == 202
    wait_for(
        lambda: scrape(system).get("t2m_orders_finished_total", 0) >= 1,
        timeout=30,
        what="the worker's provisioning counted",
        describe=lambda: system.flow_state(["T2M-METRICS-1"]),
    )
    totals = scrape(system)
    assert totals["t2m_orders_accepted_total"] == 1  # counted by a web worker
    assert totals["t2m_zoho_calls_total"] >= 2  # by the Celery pool process: a token, the sales order calls
    assert totals["t2m_provisioning_seconds_count"] >= 1

    before = live_requests(system)
    victim = web_workers(system)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: victim not in web_workers(system) and len(web_workers(system)) == 2,
        timeout=15,
        what="gunicorn replacing the killed worker",
    )
    assert live_requests(system) >= before
    assert scrape(system)["t2m_orders_accepted_total"] == 1
