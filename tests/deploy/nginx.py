"""The repository's nginx site (``deploy/nginx/t2mobile.conf``) run by the machine's own nginx, as the
current user, in a temporary directory.

The site file is used as it is but for what only this machine can say: the ports it listens on (all
on 127.0.0.1, IPv6 listens dropped), the certificate, the upstream's port, the static root and the
access log. Each of those is asserted to be in the file as expected before it is replaced, so a
change to the site that the rewrite no longer matches fails here rather than testing something else.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "t2mobile.conf"
NGINX = Path("/usr/sbin/nginx")
MIME_TYPES = Path("/etc/nginx/mime.types")

CERTIFICATE = "/etc/letsencrypt/live/gateway.example.com/fullchain.pem"
CERTIFICATE_KEY = "/etc/letsencrypt/live/gateway.example.com/privkey.pem"
STATIC_ROOT = "/opt/t2mobile/app/staticfiles/"
ACCESS_LOG = "/var/log/nginx/t2mobile.access.log"
UPSTREAM = "server 127.0.0.1:8000;"
# The site's listen lines: (address or None, port) -> how many there are.
LISTENS = {(None, 80): 1, (None, 443): 1, ("127.0.0.1", 9443): 1}
LISTEN = re.compile(r"^(?P<indent>\s*)listen (?:(?P<address>\[::\]|127\.0\.0\.1):)?(?P<port>\d+)\b", re.MULTILINE)


@dataclass(frozen=True)
class Ports:
    http: int
    https: int
    internal: int
    upstream: int


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def site_for_this_machine(text: str, *, ports: Ports, cert: Path, key: Path, static_root: Path, log: Path) -> str:
    seen: dict[tuple[str | None, int], int] = {}
    for match in LISTEN.finditer(text):
        if match["address"] != "[::]":
            where = (match["address"], int(match["port"]))
            seen[where] = seen.get(where, 0) + 1
    assert seen == LISTENS, f"the site's listen lines changed: {seen}"
    new_port = {80: ports.http, 443: ports.https, 9443: ports.internal}

    def relisten(match: re.Match) -> str:
        if match["address"] == "[::]":
            return f"{match['indent']}# (IPv6 listen dropped for the test) listen [::]:{match['port']}"
        return f"{match['indent']}listen 127.0.0.1:{new_port[int(match['port'])]}"

    lines = LISTEN.sub(relisten, text).splitlines(keepends=True)
    for old, new, count in (
        (UPSTREAM, f"server 127.0.0.1:{ports.upstream};", 1),
        (CERTIFICATE, str(cert), 2),
        (CERTIFICATE_KEY, str(key), 2),
        (STATIC_ROOT, f"{static_root}/", 2),
        (ACCESS_LOG, str(log), 3),
    ):
        # Directives only: the comments name the same paths for the reader.
        found = sum(line.count(old) for line in lines if not line.lstrip().startswith("#"))
        assert found == count, f"the site's directives name {old!r} {found} times, not {count}"
        lines = [line if line.lstrip().startswith("#") else line.replace(old, new) for line in lines]
    return "".join(lines)


def main_config(directory: Path, site: Path) -> str:
    """nginx.conf around the site, everything nginx writes kept in ``directory``."""
    temp_paths = "\n".join(
        f"    {name}_temp_path {directory / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    mime = f"    include {MIME_TYPES};" if MIME_TYPES.exists() else ""
    # As root the workers would otherwise run as nobody, who cannot read the temporary directory.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
daemon off;
worker_processes 1;
{user}
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 256; }}
http {{
{mime}
    default_type application/octet-stream;
{temp_paths}
    access_log {directory / "access.log"};
    include {site};
}}
"""


def nginx_start(directory: Path, *, ports: Ports, cert: Path, key: Path, static_root: Path) -> subprocess.Popen:
    site = directory / "t2mobile.conf"
    site.write_text(
        site_for_this_machine(
            SITE.read_text(), ports=ports, cert=cert, key=key, static_root=static_root, log=directory / "site.log"
        )
    )
    config = directory / "nginx.conf"
    config.write_text(main_config(directory, site))
    command = [str(NGINX), "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (directory / "nginx.pid").exists():
        assert process.poll() is None, (directory / "error.log").read_text()
        assert time.monotonic() < deadline, "nginx did not start"
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
