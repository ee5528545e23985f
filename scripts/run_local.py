"""`make run`: the whole service on one machine with embedded defaults, until Ctrl-C.

Starts the local Zoho SANDBOX (a simulation of Zoho's API, never the real Zoho), a local webhook
receiver that verifies Standard Webhooks signatures and prints each event, then migrates, syncs the
demo catalogue from the sandbox, and runs the web server, a Celery worker and celery-beat. With no
DATABASE_URL it uses SQLite; with no REDIS_URL it uses Redis when one answers on 127.0.0.1:6379
(database 5), otherwise kombu's filesystem transport and an in-process cache.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
PY = sys.executable
WEB_PORT = int(os.environ.get("PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("ZOHO_SANDBOX_PORT", "8765"))
RECEIVER_PORT = int(os.environ.get("WEBHOOK_RECEIVER_PORT", "8766"))


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def remembered(name: str, make) -> str:
    """A value kept in .run/ so the demo key and secret stay the same between runs."""
    path = RUN_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def environment() -> dict[str, str]:
    RUN_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "t2mobile_portal.settings")
    env.setdefault("DEBUG", "true")
    env.setdefault("SECRET_KEY", remembered("secret_key", lambda: secrets.token_urlsafe(50)))
    if "REDIS_URL" not in env and redis_answers():
        env["REDIS_URL"] = "redis://127.0.0.1:6379/5"
    env.setdefault("T2MOBILE_API_KEYS", remembered("demo_api_key", lambda: "t2m_demo_" + secrets.token_urlsafe(24)))
    env.setdefault(
        "T2MOBILE_WEBHOOK_SECRET",
        remembered("webhook_secret", lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
    )
    env.setdefault("T2MOBILE_WEBHOOK_URL", f"http://127.0.0.1:{RECEIVER_PORT}/webhooks/t2mobile")
    env.setdefault("ZOHO_ACCOUNTS_URL", f"http://127.0.0.1:{SANDBOX_PORT}")
    env.setdefault("ZOHO_API_BASE", f"http://127.0.0.1:{SANDBOX_PORT}/inventory/v1")
    env.setdefault("ZOHO_CLIENT_ID", "sandbox-client")
    env.setdefault("ZOHO_CLIENT_SECRET", "sandbox-secret")
    env.setdefault("ZOHO_REFRESH_TOKEN", "sandbox-refresh-token")
    env.setdefault("ZOHO_ORGANIZATION_ID", "sandbox-org")
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    return env


class Processes:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(list(args), cwd=ROOT, env=self.env, start_new_session=True)
        self.running.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for _, proc in self.running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def manage(env: dict[str, str], *args: str) -> int:
    return subprocess.call([PY, "manage.py", *args], cwd=ROOT, env=env)


def has_command(env: dict[str, str], name: str) -> bool:
    out = subprocess.run([PY, "manage.py", "help", "--commands"], cwd=ROOT, env=env, capture_output=True, text=True)
    return name in out.stdout.split()


def wait_for_port(port: int, seconds: float = 15) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if port_open(port):
            return True
        time.sleep(0.2)
    return False


def main() -> int:
    env = environment()
    procs = Processes(env)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if manage(env, "migrate", "--noinput") != 0:
            return 1
        if has_command(env, "zoho_sandbox"):
            procs.start("zoho-sandbox", PY, "manage.py", "zoho_sandbox", "--port", str(SANDBOX_PORT))
            wait_for_port(SANDBOX_PORT)
        if has_command(env, "webhook_receiver"):
            procs.start(
                "receiver",
                PY,
                "manage.py",
                "webhook_receiver",
                "--port",
                str(RECEIVER_PORT),
                "--secret",
                env["T2MOBILE_WEBHOOK_SECRET"],
            )
            wait_for_port(RECEIVER_PORT)
        if has_command(env, "sync_zoho_catalogue"):
            manage(env, "sync_zoho_catalogue")
        procs.start(
            "worker",
            PY,
            "-m",
            "celery",
            "-A",
            "t2mobile_portal",
            "worker",
            "-l",
            "info",
            "-Q",
            "provisioning,webhooks,default",
            "-P",
            "threads",
            "-c",
            "4",
        )
        procs.start(
            "beat",
            PY,
            "-m",
            "celery",
            "-A",
            "t2mobile_portal",
            "beat",
            "-l",
            "info",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--schedule",
            str(RUN_DIR / "celerybeat-schedule"),
        )
        procs.start("web", PY, "manage.py", "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload")
        wait_for_port(WEB_PORT)
        key = env["T2MOBILE_API_KEYS"].split(",")[0]
        product_id = subprocess.run(
            [
                PY,
                "manage.py",
                "shell",
                "--no-imports",
                "-c",
                "from orders.selectors import published_products as p; f = p().first(); print(f.item_id if f else '')",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        ).stdout.strip().splitlines()[-1:] or ["<a productId from the catalogue>"]
        product_id = product_id[0]
        base = f"http://127.0.0.1:{WEB_PORT}"
        print(
            "\n"
            "==================================================================================\n"
            f" T2Mobile gateway running at {base}  (Zoho: local SANDBOX on :{SANDBOX_PORT})\n"
            f" API key: {key}\n"
            " Catalogue:\n"
            f"   curl -s -H 'Authorization: Bearer {key}' {base}/t2mobile/products\n"
            " Place an order (the receiver prints the signed ORDER_FULFILLED within seconds):\n"
            f"   curl -s -X POST {base}/t2mobile/fulfilment -H 'Authorization: Bearer {key}' \\\n"
            "     -H 'Content-Type: application/json' -H \"Idempotency-Key: $(uuidgen || date +%s%N)\" \\\n"
            '     -d \'{"orderId":"T2M\'$(date +%s)\'","productId":"' + product_id + '",'
            '"tenure":"12_MONTHS","customerId":"CUST-1","customerName":"Ada Obi",'
            '"customerEmail":"ada@example.com","customerPhone":"08031234567"}\'\n'
            f" Docs: {base}/t2mobile/docs/ (log in at {base}/admin/ first; create a user with\n"
            "   `.venv/bin/python manage.py createsuperuser`)   Ctrl-C stops everything.\n"
            "==================================================================================\n",
            flush=True,
        )
        while True:
            for name, proc in procs.running:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping.", flush=True)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
