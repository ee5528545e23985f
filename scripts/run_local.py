"""`make run`: the whole service on one machine with embedded defaults, until Ctrl-C.

Starts the local Zoho SANDBOX (a simulation of Zoho's API, never the real Zoho), a local webhook
receiver that verifies Standard Webhooks signatures and prints each event, then migrates, syncs the
demo catalogue from the sandbox, creates a local admin account, and runs the web server, a Celery
worker and celery-beat. With no DATABASE_URL it uses SQLite; with no REDIS_URL it uses Redis when one
answers on 127.0.0.1:6379 (databases 5, 6 and 7), otherwise (and whenever REDIS_URL is set and empty) kombu's
filesystem transport and an in-process cache.

Every line a process prints comes out prefixed with its name (``web      | …``), as foreman and
honcho do, and the processes log in the short human format (``LOG_FORMAT=human``). Secrets reach
the processes through their environment, never their command lines.

``scripts/run_local.py manage <command> …`` runs one ``manage.py`` command with these settings
(e.g. ``createsuperuser``), where a bare ``manage.py`` in a new shell would lack a SECRET_KEY.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script (make run) and loaded by path in the tests
from scripts.procfile import process_argv  # noqa: E402

RUN_DIR = ROOT / ".run"
PY = sys.executable
WEB_PORT = int(os.environ.get("PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("ZOHO_SANDBOX_PORT", "8765"))
RECEIVER_PORT = int(os.environ.get("WEBHOOK_RECEIVER_PORT", "8766"))
LOCAL_ADMIN = "admin"
# The processes' names, padded to the longest so that the "|" line up.
NAMES = ("migrate", "zoho-sandbox", "receiver", "sync", "admin", "worker", "beat", "web", "product")
NAME_WIDTH = max(map(len, NAMES))
_output_lock = threading.Lock()


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
    env.setdefault("LOG_FORMAT", "human")
    # Every process counts into these files, so the web's /metrics shows the worker's counters too.
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(RUN_DIR / "prometheus"))
    env["PYTHONUNBUFFERED"] = "1"  # each line reaches the prefixing pipe when it is written
    return env


def metrics_files_clear(directory: Path) -> None:
    """Empty the metrics directory before any process starts: the whole service starts here, and the
    files of the last run's processes would otherwise be summed into this run's counters."""
    if directory.is_dir():
        for path in directory.glob("*.db"):
            path.unlink()
    directory.mkdir(parents=True, exist_ok=True)


def prefix_lines(name: str, stream: BinaryIO | Iterable[bytes], out: TextIO, width: int = NAME_WIDTH) -> None:
    """Copy ``stream`` to ``out`` line by line, each line prefixed ``name | `` (until end of file)."""
    label = f"{name:<{width}} | "
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        with _output_lock:  # whole lines only, never two processes' halves
            out.write(label + line + "\n")
            out.flush()


def start_prefixed(
    name: str, args: list[str], env: dict[str, str], out: TextIO | None = None, *, own_session: bool = True
) -> subprocess.Popen:
    """Start ``args``, its stdout and stderr prefixed with ``name`` on ``out``.

    In its own session by default (a long-running process, stopped by ``Processes.stop_all`` in
    order); a one-off command (``own_session=False``) stays in the terminal's process group, so that
    a Ctrl-C during start-up stops it with this script instead of leaving it behind.
    """
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, start_new_session=own_session, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    pump = threading.Thread(
        target=prefix_lines, args=(name, proc.stdout, out or sys.stdout), name=f"output-{name}", daemon=True
    )
    pump.start()
    proc.output_pump = pump  # type: ignore[attr-defined]
    return proc


def receiver_command(port: int) -> list[str]:
    """The receiver's command line: its secret comes from T2MOBILE_WEBHOOK_SECRET in its environment."""
    return [PY, "manage.py", "webhook_receiver", "--port", str(port)]


def order_lines(*, base: str, key: str, product_id: str, tenure: str = "12_MONTHS") -> list[str]:
    """Shell lines (bash and curl) that place an order, show its keys, and read its status.

    The customer is the same every time, on purpose: the sandbox forgets its Zoho contacts on exit
    while db.sqlite3 remembers which contact the customerId had, so the first order after a second
    ``make run`` shows a cached contact Zoho no longer knows being found or created again (the order
    is fulfilled; the log says "zoho no longer knows the cached contact").
    """
    auth = f"-H 'Authorization: Bearer {key}'"
    body = (
        '\'{"orderId":"\'"$ORDER"\'","productId":"' + product_id + '","tenure":"' + tenure + '",'
        '"customerId":"CUST-ADA-OBI","customerName":"Ada Obi","customerEmail":"ada@example.com",'
        '"customerPhone":"08031234567"}\''
    )
    return [
        'ORDER=T2M$(date +%s)$RANDOM$RANDOM; echo "orderId=$ORDER  Idempotency-Key: key-$ORDER"',
        f"curl -si -X POST {base}/t2mobile/fulfilment {auth} \\",
        "  -H 'Content-Type: application/json' -H \"Idempotency-Key: key-$ORDER\" \\",
        f"  -d {body}; echo",
        f"curl -s {auth} {base}/t2mobile/orders/$ORDER; echo",
    ]


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


# Run by ``manage.py shell``: the password arrives in the environment, never on a command line.
_ENSURE_ADMIN = """
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username=os.environ["LOCAL_ADMIN_USERNAME"])
user.is_staff = user.is_superuser = user.is_active = True
user.set_password(os.environ["LOCAL_ADMIN_PASSWORD"])
user.save()
"""


def local_admin(env: dict[str, str]) -> Path | None:
    """Make the local superuser ``admin`` with the password kept in .run/admin_password.

    Only in this script's local mode (DEBUG on, which it sets unless told otherwise): never against a
    production configuration. Returns the password file, or None when no account was made.
    """
    if not truthy(env.get("DEBUG")):
        return None
    remembered("admin_password", lambda: secrets.token_urlsafe(18))
    child = {
        **env,
        "LOCAL_ADMIN_USERNAME": LOCAL_ADMIN,
        "LOCAL_ADMIN_PASSWORD": (RUN_DIR / "admin_password").read_text().strip(),
    }
    if manage(child, "shell", "--no-imports", "-c", _ENSURE_ADMIN, name="admin") != 0:
        return None
    return RUN_DIR / "admin_password"


class Processes:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        proc = start_prefixed(name, list(args), self.env)
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
                proc.wait()


def manage(env: dict[str, str], *args: str, name: str | None = None) -> int:
    """Run one manage.py command to its end, its output prefixed with ``name`` (default: the command)."""
    proc = start_prefixed(name or args[0], [PY, "manage.py", *args], env, own_session=False)
    code = proc.wait()
    proc.output_pump.join(timeout=5)
    return code


def say(name: str, text: str) -> None:
    """A line of this script's own, prefixed like the processes' lines."""
    prefix_lines(name, [line.encode() for line in text.splitlines()], sys.stdout)


def has_command(env: dict[str, str], name: str) -> bool:
    out = subprocess.run([PY, "manage.py", "help", "--commands"], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        say(name, f"manage.py help --commands failed (exit {out.returncode}):\n{out.stderr.strip()}")
        return False
    if name not in out.stdout.split():
        say(name, f"no manage.py command {name} in this checkout: not started")
        return False
    return True


def wait_for_port(port: int, seconds: float = 15, name: str = "") -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if port_open(port):
            return True
        time.sleep(0.2)
    if name:
        say(name, f"nothing listens on 127.0.0.1:{port} after {seconds:.0f} s")
    return False


PRODUCT_PLACEHOLDER = "<a productId from the catalogue>"
# Run by ``manage.py shell``: the first published product and a tenure it sells (12 months if it can).
_FIRST_PRODUCT = """
from catalogue.selectors import published_products
product = published_products().first()
if product is None:
    print("NO-PRODUCT")
else:
    tenures = [plan.tenure for plan in product.active_plans]
    print("PRODUCT", product.item_id, "12_MONTHS" if "12_MONTHS" in tenures else tenures[0])
"""


def first_product(env: dict[str, str], code: str = _FIRST_PRODUCT) -> tuple[str, str, str]:
    """``(productId, tenure, problem)`` for the banner's order lines: a published product of the
    catalogue, or the placeholder and, in ``problem``, why there is none (the lookup's error output is
    printed under ``product |``)."""
    try:
        out = subprocess.run(
            [PY, "manage.py", "shell", "--no-imports", "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return PRODUCT_PLACEHOLDER, "12_MONTHS", "the productId lookup (manage.py shell) did not finish in 60 s"
    found = [line.split() for line in out.stdout.splitlines() if line.startswith("PRODUCT ")]
    if out.returncode == 0 and found and len(found[-1]) == 3:
        _, product_id, tenure = found[-1]
        return product_id, tenure, ""
    if out.returncode != 0 or not any(line == "NO-PRODUCT" for line in out.stdout.splitlines()):
        say("product", (out.stdout + out.stderr).strip() or "(no output)")
        last = ((out.stderr or out.stdout).strip().splitlines() or ["no output"])[-1]
        return PRODUCT_PLACEHOLDER, "12_MONTHS", f"the productId lookup failed (exit {out.returncode}): {last}"
    return PRODUCT_PLACEHOLDER, "12_MONTHS", "the catalogue has no published product (see the sync lines above)"


def banner(
    *, base: str, key: str, sandbox_port: int, admin_password: Path | None, product: tuple[str, str, str]
) -> str:
    """What ``make run`` prints once everything answers: the addresses, the key, paste-able lines."""
    product_id, tenure, problem = product
    if admin_password:
        admin = f" Admin: {base}/admin/  user {LOCAL_ADMIN}, password in {admin_password.relative_to(ROOT)}\n"
    else:
        admin = " Admin: no local account (DEBUG is off); scripts/run_local.py manage createsuperuser\n"
    missing = ""
    if problem:
        missing = (
            f" !! NO productId for the order below: {problem}.\n"
            f" !! As printed the POST answers 400 UNKNOWN_PRODUCT: replace {product_id} with a productId\n"
            " !! that the Catalogue line lists.\n"
        )
    rule = "=" * 98
    return (
        f"\n{rule}\n"
        f" T2Mobile gateway running at {base}  (Zoho: local SANDBOX on :{sandbox_port})\n"
        f" API key: {key}  (kept in .run/demo_api_key unless T2MOBILE_API_KEYS is set)\n"
        f"{admin}"
        " Catalogue:\n"
        f"   curl -s -H 'Authorization: Bearer {key}' {base}/t2mobile/products; echo\n"
        " Place an order (bash and curl; the receiver prints the signed ORDER_FULFILLED within seconds).\n"
        " Paste the lines in one shell. The first picks a new orderId and Idempotency-Key and prints them;\n"
        " the curl after it sends the order, the last one reads its status:\n"
        f"{missing}"
        + "".join(f"   {line}\n" for line in order_lines(base=base, key=key, product_id=product_id, tenure=tenure))
        + " Send the POST again with the same $ORDER: the stored answer comes back, with\n"
        " `Idempotent-Replayed: true`. Run the ORDER= line again for another order.\n"
        f" Docs: {base}/t2mobile/docs/ (log in at {base}/admin/ first)   Ctrl-C stops everything.\n"
        f"{rule}\n"
    )


PORTS = (("PORT", WEB_PORT), ("ZOHO_SANDBOX_PORT", SANDBOX_PORT), ("WEBHOOK_RECEIVER_PORT", RECEIVER_PORT))


def ports_in_use() -> list[str]:
    taken = [(var, port) for var, port in PORTS if port_open(port)]
    return [f"127.0.0.1:{port} is in use ({var} chooses another)" for var, port in taken]


def _stop(*_) -> None:
    """Ctrl-C (SIGINT) or SIGTERM: stop once. Further signals are ignored while the processes stop
    (``make`` passes a SIGTERM on to this script, so a SIGTERM to the group arrives twice)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> int:
    busy = ports_in_use()
    if busy:
        print("make run: " + "; ".join(busy) + " (another make run?)", file=sys.stderr, flush=True)
        return 1
    env = environment()
    metrics_files_clear(Path(env["PROMETHEUS_MULTIPROC_DIR"]))
    procs = Processes(env)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        if manage(env, "migrate", "--noinput") != 0:
            return 1
        if has_command(env, "zoho_sandbox"):
            procs.start("zoho-sandbox", PY, "manage.py", "zoho_sandbox", "--port", str(SANDBOX_PORT))
            wait_for_port(SANDBOX_PORT, name="zoho-sandbox")
        if has_command(env, "webhook_receiver"):
            procs.start("receiver", *receiver_command(RECEIVER_PORT))
            wait_for_port(RECEIVER_PORT, name="receiver")
        if has_command(env, "sync_zoho_catalogue"):
            manage(env, "sync_zoho_catalogue", name="sync")
        admin_password = local_admin(env)
        # One worker for every queue (the Procfile's provisioning worker on a small threads pool), and
        # the Procfile's beat with its schedule file under .run/.
        procs.start(
            "worker",
            *process_argv(
                "worker",
                python=PY,
                queues="provisioning,webhooks,default",
                pool="threads",
                concurrency=4,
                drop=("node_name",),
            ),
        )
        procs.start(
            "beat", *process_argv("beat", python=PY, extra=("--schedule", str(RUN_DIR / "celerybeat-schedule")))
        )
        procs.start("web", PY, "manage.py", "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload")
        wait_for_port(WEB_PORT, seconds=30, name="web")
        text = banner(
            base=f"http://127.0.0.1:{WEB_PORT}",
            key=env["T2MOBILE_API_KEYS"].split(",")[0],
            sandbox_port=SANDBOX_PORT,
            admin_password=admin_password,
            product=first_product(env),
        )
        with _output_lock:
            print(text, flush=True)
        while True:
            for name, proc in procs.running:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping.", flush=True)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        print("make run: every process stopped.", flush=True)


def manage_with_local_settings(args: list[str]) -> int:
    """``run_local.py manage createsuperuser``: one manage.py command with make run's settings."""
    return subprocess.call([PY, "manage.py", *args], cwd=ROOT, env=environment())


if __name__ == "__main__":
    if sys.argv[1:2] == ["manage"]:
        sys.exit(manage_with_local_settings(sys.argv[2:]))
    sys.exit(main())
