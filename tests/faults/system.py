"""The service as production runs it, for the fault tests.

Every process is started from its line in the ``Procfile``, with the executables of ``.venv-prod``
(a venv made from ``requirements.txt`` alone, which ``make test`` builds), production settings
(``t2mobile_portal.settings``, DEBUG off) and one private ``redis-server`` for the cache, the rate
limits and the broker (databases 1, 2 and 0), as in production. Around it: the tests' PostgreSQL database, the ZOHO
SANDBOX (simulated Zoho, in this process) and a local receiver that verifies every signature.

Nothing here shortens a lease, a sweep or a beat interval, or moves a clock: the processes run with
the production values, and the tests wait in real time.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from standardwebhooks import Webhook

from integrations.zoho.sandbox import SANDBOX_REFRESH_TOKEN, ZohoSandbox
from orders.models import Fulfilment
from partners.services import secret_generate
from scripts.procfile import is_celery_worker, process_argv, procfile
from tests.conftest import order_payload
from tests.webhooks.conftest import Receiver
from tests.zoho_fixtures import PrivateRedis, database_url_of_tests, free_port, wait_for
from webhooks.models import WebhookLog

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_VENV = ROOT / ".venv-prod"


def production_venv() -> Path:
    for tool in ("python", "celery", "gunicorn"):
        if not (PRODUCTION_VENV / "bin" / tool).exists():
            pytest.fail(
                f"{PRODUCTION_VENV}/bin/{tool} is missing: `make test` builds .venv-prod from requirements.txt alone"
            )
    return PRODUCTION_VENV


class ProcfileProcess:
    """One Procfile command (``scripts/procfile.py``) run by bash in its own process group, output to
    ``<logs>/<name>.log``."""

    def __init__(self, name: str, command: str, *, env: dict, logs: Path):
        self.name = name
        self.command = command
        self.log = logs / f"{name}.log"
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""

    def children(self) -> list[int]:
        """The pids of the process's direct children (a prefork worker's pool processes)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill(self) -> None:
        """SIGKILL to the whole process group: the machine or container is gone."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM to the main process, as a deploy does (systemd, Kubernetes, supervisord)."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.alive():
            self.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class VerifyingReceiver(Receiver):
    """The partner's endpoint: records every request and verifies its Standard Webhooks signature."""

    def __init__(self, secret: str):
        super().__init__()
        self.webhook = Webhook(secret)

    def verified(self) -> list[dict]:
        """The events whose signature verifies, in arrival order (a redelivery appears twice)."""
        with self._lock:
            received = list(self.received)
        events = []
        for request in received:
            try:
                events.append(self.webhook.verify(request.body, request.headers))
            except Exception as exc:
                raise AssertionError(f"a delivery failed signature verification: {exc}") from exc
        return events

    def ids_of(self, event_type: str) -> list[str]:
        return [event["id"] for event in self.verified() if event["type"] == event_type]


class System:
    """The Procfile's processes against PostgreSQL, one Redis, the sandbox and the receiver."""

    def __init__(self, tmp_path: Path, *, redis_persistent: bool = True):
        self.venv = production_venv()
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.redis = PrivateRedis(tmp_path / "redis", persistent=redis_persistent)
        self.sandbox = ZohoSandbox(port=0, rate_limit=100000, max_inflight=100)
        self.webhook_secret = secret_generate()
        self.receiver = VerifyingReceiver(self.webhook_secret)
        self.api_key = secrets.token_urlsafe(32)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procfile = procfile()
        self.processes: dict[str, ProcfileProcess] = {}
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.api_key}"

    # --- the whole service ------------------------------------------------------------------------

    def env(self) -> dict:
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECURE_SSL_REDIRECT": "false",  # a loopback test box (operations.md)
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url_of_tests(),
            "REDIS_URL": self.redis.url,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "T2MOBILE_API_KEYS": self.api_key,
            "T2MOBILE_WEBHOOK_URL": self.receiver.url,
            "T2MOBILE_WEBHOOK_SECRET": self.webhook_secret,
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",  # the receiver is on loopback
            "ZOHO_ACCOUNTS_URL": self.sandbox.accounts_url,
            "ZOHO_API_BASE": self.sandbox.api_base,
            "ZOHO_CLIENT_ID": "sandbox-client",
            "ZOHO_CLIENT_SECRET": "sandbox-secret-" + secrets.token_hex(8),
            "ZOHO_REFRESH_TOKEN": SANDBOX_REFRESH_TOKEN,
            "ZOHO_ORGANIZATION_ID": "60012345678",
            "LOG_LEVEL": "INFO",
        }

    def start(self, *names: str) -> None:
        """Redis, the sandbox, the receiver, ``release`` (migrate), then the named processes (all
        but ``release`` by default), waiting for the web process to answer."""
        self.redis.start()
        self.sandbox.start()
        self.receiver._thread.start()
        release = subprocess.run(
            ["bash", "-c", f"exec {shlex.join(process_argv('release'))}"],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            timeout=300,
        )
        assert release.returncode == 0, release.stdout.decode()[-3000:] + release.stderr.decode()[-3000:]
        self.run(*(names or [name for name in self.procfile if name != "release"]))

    def run(self, *names: str, suffix: str = "") -> list[ProcfileProcess]:
        """Start Procfile processes (``suffix`` starts another one of a kind, under its own node name)."""
        started, workers = [], []
        for name in names:
            worker = is_celery_worker(name)
            argv = process_argv(name, node_name=f"{name}{suffix}@%h") if suffix and worker else process_argv(name)
            process = ProcfileProcess(name + suffix, shlex.join(argv), env=self.env(), logs=self.logs)
            self.processes[name + suffix] = process
            started.append(process)
            if worker:
                workers.append(process)
        if any(p.name.startswith("web") for p in started):
            wait_for(self._web_answers, timeout=60, what="the web process answering")
        for process in workers:
            wait_for(lambda p=process: "ready." in p.output(100_000), timeout=60, what=f"{process.name} ready")
        return started

    def _web_answers(self) -> bool:
        try:
            return self.http.get(f"{self.base}/t2mobile/health", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False

    def stop(self) -> None:
        for process in self.processes.values():
            if process.alive():
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.receiver.server.shutdown()
        self.receiver.server.server_close()
        self.sandbox.stop()
        self.redis.stop(kill=True)
        self.http.close()

    def dead(self) -> dict[str, str]:
        """Processes that exited, with the end of their output."""
        return {name: p.output() for name, p in self.processes.items() if not p.alive()}

    def flow_state(self, order_ids: list[str]) -> str:
        """Where each order and its events are (for a failure message): the database's rows, the
        receiver's verified deliveries and the broker's queue lengths."""
        lines = []
        for f in Fulfilment.objects.filter(order__order_id__in=order_ids).select_related("order"):
            lines.append(
                f"{f.order.order_id}: order {f.order.status}, fulfilment {f.status} attempts={f.attempts} "
                f"running={f.attempt_running} next={f.next_attempt_at} last={f.last_attempt_at} "
                f"error={f.last_error[:120]!r}"
            )
        for log in WebhookLog.objects.filter(order__order_id__in=order_ids).order_by("id"):
            lines.append(
                f"{log.order.order_id} {log.event_type}: {log.status} retries={log.retries} next={log.next_retry_at} "
                f"sent={log.sent_at} attempts={log.attempts.count()}"
            )
        verified = [(event["type"], event["data"].get("orderId")) for event in self.receiver.verified()]
        lines.append(f"verified at the receiver: {verified}")
        try:
            client = self.redis.client()
            queues = {name: client.llen(name) for name in ("celery", "provisioning", "webhooks")}
            lines.append(f"redis: dbsize={client.dbsize()} queues={queues} keys={client.keys()[:30]}")
            lines.append(f"redis limits: keys={self.redis.client('limits').keys()[:30]}")
        except Exception as exc:  # Redis down is also a state
            lines.append(f"redis: {type(exc).__name__}")
        lines.append(f"now={timezone.now()}")
        return "\n".join(lines)

    def logs_text(self) -> str:
        return "\n".join(f"--- {name}\n{p.output(3000)}" for name, p in self.processes.items())

    # --- the partner's calls ----------------------------------------------------------------------

    def order(self, order_id: str, **overrides) -> requests.Response:
        return self.http.post(
            f"{self.base}/t2mobile/fulfilment",
            json=order_payload(orderId=order_id, **overrides),
            headers={"Idempotency-Key": f"key-{order_id}"},
            timeout=30,
        )

    def get(self, path: str) -> requests.Response:
        return self.http.get(f"{self.base}{path}", timeout=30)

    def health(self) -> dict:
        return self.get("/t2mobile/health").json()

    def manage(self, *args: str, **env: str) -> str:
        """``python manage.py …`` of the production install, with the service's settings."""
        command = subprocess.run(
            [str(self.venv / "bin" / "python"), "manage.py", *args],
            cwd=ROOT,
            env={**self.env(), **env},
            capture_output=True,
            timeout=120,
        )
        assert command.returncode == 0, command.stdout.decode()[-2000:] + command.stderr.decode()[-2000:]
        return command.stdout.decode()
