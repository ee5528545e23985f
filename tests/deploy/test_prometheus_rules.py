"""deploy/prometheus/: promtool accepts the scrape config and the alert rules, the rules' unit tests
pass, and every metric the rules name is one /metrics really exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

needs_promtool = pytest.mark.skipif(
    not Path(PROMTOOL).exists(), reason="promtool is missing: apt-get install prometheus (.ci/run does)"
)


def promtool(*args: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_promtool_accepts_the_scrape_config(tmp_path):
    # The config names the token file of a server; promtool checks that it exists, so point it here.
    token = tmp_path / "t2mobile-metrics-token"
    token.write_text("not-a-real-token\n")
    config = (DEPLOY / "prometheus.yml").read_text().replace("/etc/prometheus/t2mobile-metrics-token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")

    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    scrape = yaml.safe_load(config)["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics" and scrape["static_configs"][0]["targets"] == ["127.0.0.1:8000"]
    assert scrape["authorization"]["credentials_file"] == str(token)


@needs_promtool
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    checked = promtool("check", "rules", "alerts.yml")
    tested = promtool("test", "rules", "alerts_test.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.django_db
def test_every_metric_the_rules_name_is_exposed_by_metrics(settings):
    settings.METRICS_TOKEN = "scrape-secret"
    settings.ZOHO_DAILY_LIMIT = 1000  # the remaining budget is exposed only under a limit
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    named = {
        name
        for group in rules["groups"]
        for rule in group["rules"]
        for name in re.findall(r"\bt2m_[a-z_]+", rule["expr"])
    }

    body = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()
    exposed = set()
    for family in text_string_to_metric_families(body):
        exposed |= {family.name, *(sample.name for sample in family.samples)}
        if family.type == "counter":
            exposed.add(f"{family.name}_total")  # a counter with no labelled child yet still has its name

    assert len(named) >= 9
    assert named <= exposed, named - exposed
