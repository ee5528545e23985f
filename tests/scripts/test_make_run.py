"""``make run`` as a user meets it: from a fresh clone of the committed HEAD (so it builds its own
``.venv``), the lines its banner prints, pasted into bash as printed, answer as the banner says; the
local receiver verifies the order's ``ORDER_FULFILLED``; Ctrl-C stops every process it started.

The stack runs on free ports (PORT, ZOHO_SANDBOX_PORT, WEBHOOK_RECEIVER_PORT), with SQLite in the
clone and the Redis database of this test run, so it never meets another test or a developer's
``make run``. About a minute on 2 cores, most of it the venv (pip from the local wheels).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RULE = "=" * 98
# Set in make's environment, so inherited by every process it starts: how they are all found again.
MARK = "MAKE_RUN_TEST_STACK"
# What a user's shell passes on; the rest of the test's environment (DJANGO_SETTINGS_MODULE of
# pytest-django, DATABASE_URL, MAKEFLAGS of `make test`, …) would not be there.
USER_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "TERM")


def free_ports(count: int) -> list[int]:
    """``count`` different ports nothing listens on (held together, so they differ)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class Output:
    """The lines of a process's output, read in a thread as they come."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            with self._lock:
                self.lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def tail(self, count: int = 80) -> str:
        with self._lock:
            return "\n".join(self.lines[-count:])

    def wait_for(self, found, *, timeout: float, what: str, process: subprocess.Popen):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = found(self.text())
            if result:
                return result
            if process.poll() is not None:
                self._thread.join(5)
                pytest.fail(f"make run exited ({process.returncode}) before {what}:\n{self.tail()}")
            time.sleep(0.2)
        pytest.fail(f"no {what} within {timeout:.0f} s:\n{self.tail()}")


def banner_of(text: str) -> str | None:
    """The banner: from the rule that opens it to the rule that closes it."""
    parts = text.split(RULE)
    return parts[1] if len(parts) >= 3 else None


def shell_commands(banner: str) -> list[str]:
    """The paste-able lines of the banner, exactly as printed (indented three spaces; a line ending in
    a backslash goes on with the next)."""
    commands, current = [], []
    for line in banner.splitlines():
        if not line.startswith("   "):
            continue
        current.append(line)
        if not line.endswith("\\"):
            commands.append("\n".join(current))
            current = []
    assert not current, f"a continued line with no end: {current}"
    return commands


def stack_processes(mark: str) -> dict[int, str]:
    """Every live process whose environment holds ``MARK=mark``: the command lines, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"{MARK}={mark}".encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # exited, not yet reaped
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def run_printed(command: str, *, curl_home: Path, order: str | None = None) -> str:
    """One printed command in ``bash -c``, as pasted; ``order`` is the ``$ORDER`` of the shell it was
    pasted in. curl's config file (CURL_HOME) only adds a line with the HTTP status to what it prints."""
    env = {**os.environ, "CURL_HOME": str(curl_home)}
    env.pop("ORDER", None)
    if order:
        env["ORDER"] = order
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def http_status(output: str) -> int:
    return int(re.findall(r"^HTTP_STATUS=(\d+)$", output, re.M)[-1])


def json_body(output: str) -> dict:
    """The JSON body of a curl answer (after the headers of ``-i``, before the status line)."""
    body = output.split("\n\n", 1)[-1] if "\nHTTP/" in "\n" + output else output  # (text mode: \r\n is \n)
    return json.loads(body.split("\nHTTP_STATUS=")[0].strip())


def test_make_run_from_a_fresh_clone_answers_the_lines_its_banner_prints(tmp_path):
    started = time.monotonic()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    web_port, sandbox_port, receiver_port = free_ports(3)
    mark = uuid.uuid4().hex
    env = {name: os.environ[name] for name in USER_ENV if name in os.environ}
    env.update({name: value for name, value in os.environ.items() if name.startswith("PIP_")})
    env.update(
        {
            "PORT": str(web_port),
            "ZOHO_SANDBOX_PORT": str(sandbox_port),
            "WEBHOOK_RECEIVER_PORT": str(receiver_port),
            "REDIS_URL": settings.REDIS_URL,  # this test run's Redis database, not make run's default /5
            MARK: mark,
        }
    )
    curl_home = tmp_path / "curl"
    curl_home.mkdir()
    (curl_home / ".curlrc").write_text('write-out = "\\nHTTP_STATUS=%{http_code}\\n"\n')
    # Its own process group, as a command typed in a terminal is: Ctrl-C goes to the whole group.
    make = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    output = Output(make.stdout)
    try:
        # Given make run from a fresh clone, up to its banner
        banner = output.wait_for(banner_of, timeout=240, what="banner", process=make)
        up = time.monotonic() - started
        assert f"running at http://127.0.0.1:{web_port}" in banner and f"SANDBOX on :{sandbox_port}" in banner
        assert "!! NO productId" not in banner and "<a productId" not in banner, banner
        commands = shell_commands(banner)
        [catalogue] = [c for c in commands if "/t2mobile/products" in c]
        [new_order] = [c for c in commands if c.strip().startswith("ORDER=")]
        [post] = [c for c in commands if "-X POST" in c]
        [status] = [c for c in commands if "/t2mobile/orders/$ORDER" in c]
        assert len(commands) == 4, commands
        assert "uuidgen" not in banner

        # The catalogue line: 200 with the sandbox's products, the one of the order among them
        answer = run_printed(catalogue, curl_home=curl_home)
        assert http_status(answer) == 200, answer
        products = json_body(answer)["products"]
        product_id = re.search(r'"productId":"([^"]+)"', post).group(1)
        assert products and product_id in {p["productId"] for p in products}, (product_id, products)

        # The ORDER= line and the POST after it, pasted together: 202, with the orderId and key shown
        placed = run_printed(new_order + "\n" + post, curl_home=curl_home)
        order_id = re.search(r"orderId=(\S+)", placed).group(1)
        assert f"Idempotency-Key: key-{order_id}" in placed
        assert http_status(placed) == 202, placed
        assert "idempotent-replayed" not in placed.lower()
        first = json_body(placed)

        # The POST again with the same $ORDER: the same answer, replayed
        again = run_printed(post, curl_home=curl_home, order=order_id)
        assert http_status(again) == 202, again
        assert "idempotent-replayed: true" in again.lower()
        assert json_body(again) == first

        # The status line shows the order
        shown = run_printed(status, curl_home=curl_home, order=order_id)
        assert http_status(shown) == 200, shown
        assert json_body(shown)["orderId"] == order_id

        # Then the receiver verifies its ORDER_FULFILLED, and the status says FULFILLED
        fulfilled = re.compile(rf"^receiver +\| verified ORDER_FULFILLED evt_\S+ orderId={order_id}$", re.M)
        output.wait_for(fulfilled.search, timeout=90, what=f"verified ORDER_FULFILLED of {order_id}", process=make)
        assert "REJECTED" not in output.text()
        assert json_body(run_printed(status, curl_home=curl_home, order=order_id))["status"] == "FULFILLED"

        # When Ctrl-C reaches make run's process group
        running = stack_processes(mark)
        processes = ("make run", "run_local.py", "runserver", "zoho_sandbox", "webhook_receiver")
        for expected in (*processes, "t2mobile_portal worker", "t2mobile_portal beat"):
            assert any(expected in cmd for cmd in running.values()), (expected, running)
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=60)
        output._thread.join(10)

        # Then it stops, says so, and not one of its processes is left, nor a port open
        assert "make run: every process stopped." in output.text(), output.tail()
        deadline = time.monotonic() + 5
        while stack_processes(mark) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stack_processes(mark) == {}, f"left running: {stack_processes(mark)}\n{output.tail()}"
        for port in (web_port, sandbox_port, receiver_port):
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{port} still answers"
        print(f"make run: banner after {up:.0f} s; whole test {time.monotonic() - started:.0f} s")
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(10)
        for pid in stack_processes(mark):  # only the processes this test started (they carry its mark)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(clone, ignore_errors=True)  # the clone's .venv is about 440 MB
