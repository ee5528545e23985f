"""``REDIS_URL=`` (set and empty) runs on the embedded broker and cache: kombu's filesystem transport
in ``.run/broker`` and Django's in-process cache, and publishing there logs no kombu warning."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROKER_IN = ROOT / ".run" / "broker" / "in"

PUBLISH = """
import django
django.setup()
from django.conf import settings
from t2mobile_portal.celery import app
print("broker", settings.CELERY_BROKER_URL, "cache", settings.CACHES["default"]["BACKEND"])
for _ in range(3):
    app.send_task("tests.never_run", queue="{queue}")
"""


def test_publishing_with_redis_url_empty_uses_the_filesystem_broker_without_kombus_hostname_warning():
    # A queue no worker listens to (make run's worker takes provisioning, webhooks and default).
    queue = f"test-embedded-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(REDIS_URL="", DJANGO_SETTINGS_MODULE="t2mobile_portal.settings_test")
    try:
        result = subprocess.run(
            [sys.executable, "-c", PUBLISH.format(queue=queue)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        published = list(BROKER_IN.glob(f"*{queue}*"))
        stray_control = (ROOT / "control").exists()
    finally:
        for message in BROKER_IN.glob(f"*{queue}*"):
            message.unlink()
        for table in (BROKER_IN.parent / "control").glob(f"{queue}*"):
            table.unlink()

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "broker filesystem://" in output and "cache django.core.cache.backends.locmem.LocMemCache" in output
    assert len(published) == 3  # the messages really went through kombu's filesystem transport
    assert "No hostname was supplied" not in output, output
    assert '"level": "WARNING"' not in output, output
    assert not stray_control  # kombu's exchange table lives in .run/broker/control, not ./control
