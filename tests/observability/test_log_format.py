"""The two log formats: production's one JSON object per line with an ISO 8601 UTC time, and the
short human line ``make run`` asks for with ``LOG_FORMAT=human``."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from core.logging import ContextFilter, HumanFormatter, UtcJsonFormatter, order_id_var

ROOT = Path(__file__).resolve().parents[2]
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
LOG_ONE_LINE = (
    "import logging; logging.getLogger('orders.provisioning').info("
    "'order fulfilled', extra={'order_id': 'T2M-LOG-1', 'sales_order_id': '4815'})"
)


def record(message: str = "order fulfilled", **extra) -> logging.LogRecord:
    rec = logging.LogRecord("orders.provisioning", logging.INFO, __file__, 1, message, None, None)
    rec.__dict__.update(extra)
    ContextFilter().filter(rec)
    return rec


def log_line_from_a_fresh_process(**env) -> str:
    """What ``manage.py`` prints on stdout for one log call, with the settings read from ``env``."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", LOG_ONE_LINE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings_test", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "order fulfilled" in line]
    return line


def test_the_json_time_is_iso_8601_utc_with_z_and_is_the_records_moment():
    formatter = UtcJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"asctime": "time", "levelname": "level"}
    )
    rec = record(order_id="T2M-1")

    line = json.loads(formatter.format(rec))

    assert ISO_UTC.match(line["time"]), line["time"]
    parsed = datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
    assert parsed.utcoffset().total_seconds() == 0
    assert abs(parsed.timestamp() - rec.created) < 0.001
    assert line["level"] == "INFO" and line["order_id"] == "T2M-1"


def test_production_default_is_one_json_object_per_line_with_a_utc_time():
    line = log_line_from_a_fresh_process()

    body = json.loads(line)
    assert ISO_UTC.match(body["time"]), body["time"]
    assert body["logger"] == "orders.provisioning" and body["order_id"] == "T2M-LOG-1"


def test_log_format_human_prints_a_short_line_without_json():
    line = log_line_from_a_fresh_process(LOG_FORMAT="human")

    assert re.fullmatch(
        r"\d\d:\d\d:\d\d [A-Z]{2,5}[+-]?\d* "  # the time and its zone
        r"INFO orders\.provisioning order fulfilled order_id=T2M-LOG-1 sales_order_id=4815",
        line,
    ), line
    assert "{" not in line


def test_the_human_line_carries_the_context_and_leaves_out_empty_fields():
    token = order_id_var.set("T2M-CTX-9")
    try:
        rec = record("webhook attempt recorded", status_code=200, error="", data={"id": "celery's copy"})
    finally:
        order_id_var.reset(token)

    line = HumanFormatter().format(rec)

    assert line.endswith(" INFO orders.provisioning webhook attempt recorded order_id=T2M-CTX-9 status_code=200")
    assert "request_id" not in line and "task_id" not in line and "error=" not in line and "data=" not in line
