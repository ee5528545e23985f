"""``manage.py webhook_receiver``: verifies with the standardwebhooks library, prints, rejects with 400;
started as ``make run`` starts it, its secret is in its environment and not on its command line."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from partners.models import WebhookSecret
from partners.services import secret_generate
from scripts import run_local
from tests.webhooks.conftest import record
from webhooks.delivery import DeliveryOutcome, event_deliver

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_receiver(args: list[str], **env_extra: str) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings_test", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**env, **env_extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(params=["environment", "file"])
def receiver_process(request, tmp_path):
    """The receiver as make run starts it (secret in T2MOBILE_WEBHOOK_SECRET), or with --secret-file."""
    secret, port = secret_generate(), _free_port()
    if request.param == "environment":
        process = start_receiver(run_local.receiver_command(port), T2MOBILE_WEBHOOK_SECRET=secret)
    else:
        secret_file = tmp_path / "webhook_secret"
        secret_file.write_text(secret + "\n")
        process = start_receiver(
            [sys.executable, "manage.py", "webhook_receiver", "--port", str(port), "--secret-file", str(secret_file)],
            T2MOBILE_WEBHOOK_SECRET="",
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the receiver did not start:\n{process.communicate(timeout=10)[0][-3000:]}")
            time.sleep(0.1)
    yield process, port, secret
    process.terminate()
    process.wait(10)


def test_the_receiver_prints_a_verified_event_and_rejects_a_bad_signature(partner, receiver_process):
    process, port, secret = receiver_process
    partner.webhook_url = f"http://127.0.0.1:{port}/webhooks/t2mobile"
    partner.save()
    good_secret = WebhookSecret.objects.create(partner=partner, secret=secret)
    good = record(partner)
    good_outcome = event_deliver(log_pk=good.pk)
    good_secret.delete()
    WebhookSecret.objects.create(partner=partner, secret=secret_generate())
    bad = record(partner)

    bad_outcome = event_deliver(log_pk=bad.pk)

    process.terminate()
    output = process.communicate(timeout=10)[0]
    assert good_outcome == DeliveryOutcome.SENT
    assert f"verified ORDER_FULFILLED {good.event_id} orderId={good.order.order_id}" in output
    assert bad_outcome == DeliveryOutcome.RETRY and bad.attempts.get().status_code == 400
    assert f"REJECTED {bad.event_id}" in output


@pytest.mark.parametrize("receiver_process", ["environment"], indirect=True)
def test_the_receiver_make_run_starts_has_no_secret_on_its_command_line(receiver_process):
    process, port, secret = receiver_process

    cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")

    assert b"webhook_receiver" in cmdline and str(port).encode() in cmdline  # it is that process
    assert not any(secret.encode() in arg or b"whsec_" in arg for arg in cmdline), cmdline


@pytest.mark.parametrize("receiver_process", ["environment"], indirect=True)
@pytest.mark.parametrize("signature", ["garbage", "v1", "v1,!!!", ""])
def test_the_receiver_answers_400_to_a_malformed_signature_header(receiver_process, signature):
    """A signature header without a ``v1,`` part made standardwebhooks 1.1 raise ValueError: the
    receiver dropped the connection instead of answering 400 as docs/webhooks.md tells partners."""
    process, port, _ = receiver_process
    headers = {"webhook-id": "msg_x", "webhook-timestamp": str(int(time.time())), "webhook-signature": signature}

    response = requests.post(f"http://127.0.0.1:{port}/webhooks/t2mobile", data=b"{}", headers=headers, timeout=5)

    assert response.status_code == 400
    assert process.poll() is None
