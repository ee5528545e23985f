"""deploy/systemd/: one unit per Procfile process, running exactly the Procfile's command from the
production venv, and valid for the machine's systemd (``systemd-analyze verify``) where it has one.
"""

from __future__ import annotations

import runpy
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from integrations.zoho.auth import CONNECT_TIMEOUT, READ_TIMEOUT
from scripts.procfile import process_argv, procfile

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
VENV_BIN = "/opt/t2mobile/venv/bin"
BACKUP_UNITS = sorted((ROOT / "deploy" / "backup").glob("t2mobile-backup.*"))
BACKUP_SCRIPT = "/opt/t2mobile/app/deploy/backup/backup.sh"
LONG_RUNNING = [name for name in procfile() if name != "release"]


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values, in order]}}`` of a unit file (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(name: str) -> dict[str, list[str]]:
    return unit(UNITS / f"t2mobile-{name}.service")["Service"]


def words(values: list[str]) -> list[str]:
    return [word for value in values for word in value.split()]


def seconds(value: str) -> int:
    return int(value[: -len("min")]) * 60 if value.endswith("min") else int(value.removesuffix("s"))


@pytest.mark.parametrize("name", list(procfile()))
def test_each_unit_runs_the_procfiles_command_from_the_venv(name):
    (exec_start,) = service(name)["ExecStart"]
    # %% is systemd's escape of a literal % (the Procfile's %h is Celery's host name, not systemd's)
    argv = shlex.split(exec_start.replace("%%", "%"))
    expected = process_argv(name)
    assert argv[0] == f"{VENV_BIN}/{expected[0]}"
    assert argv[1:] == expected[1:]
    assert "%" not in exec_start.replace("%%", ""), "a bare % would be a systemd specifier"


@pytest.mark.parametrize("name", list(procfile()))
def test_each_unit_runs_as_the_service_user_with_the_env_file_and_hardening(name):
    options = service(name)
    assert options["User"] == ["t2mobile"]
    assert options["WorkingDirectory"] == ["/opt/t2mobile/app"]
    assert options["EnvironmentFile"] == ["/etc/t2mobile/env"]
    for option, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes")):
        assert options[option] == [value], option


def test_release_is_a_oneshot_that_web_and_the_workers_require_first():
    assert service("release")["Type"] == ["oneshot"]
    for name in LONG_RUNNING:
        head = unit(UNITS / f"t2mobile-{name}.service")["Unit"]
        assert "t2mobile-release.service" in words(head["Requires"]), name
        assert "t2mobile-release.service" in words(head["After"]), name


def test_the_long_running_processes_restart_on_failure_and_belong_to_the_target():
    target = unit(UNITS / "t2mobile.target")
    assert sorted(words(target["Unit"]["Wants"])) == sorted(f"t2mobile-{name}.service" for name in LONG_RUNNING)
    assert target["Install"]["WantedBy"] == ["multi-user.target"]
    for name in LONG_RUNNING:
        parsed = unit(UNITS / f"t2mobile-{name}.service")
        assert parsed["Service"]["Restart"] == ["on-failure"], name
        assert parsed["Service"]["KillMode"] == ["mixed"], name
        assert parsed["Unit"]["PartOf"] == ["t2mobile.target"], name
        assert parsed["Install"]["WantedBy"] == ["t2mobile.target"], name


def test_stop_timeouts_leave_room_for_a_graceful_stop():
    gunicorn = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert seconds(service("web")["TimeoutStopSec"][0]) > gunicorn["graceful_timeout"]
    # an order's Zoho calls (up to 4 for a new customer), each bounded by its connect and read timeouts
    assert seconds(service("worker")["TimeoutStopSec"][0]) >= 4 * (CONNECT_TIMEOUT + READ_TIMEOUT)
    # every delivery attempt ends within its claim's lease
    assert seconds(service("webhooks")["TimeoutStopSec"][0]) > settings.WEBHOOK_CLAIM_LEASE_SECONDS


def test_the_procfile_has_a_unit_for_every_process_and_no_unit_is_left_over():
    units = {path.name for path in UNITS.iterdir()}
    extra = {"t2mobile.target", "t2mobile-metrics-dir.service"}
    assert units == {f"t2mobile-{name}.service" for name in procfile()} | extra


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_process_counts_into_the_one_metrics_directory_the_gateway_start_empties(name):
    options, head = service(name), unit(UNITS / f"t2mobile-{name}.service")["Unit"]
    assert "PROMETHEUS_MULTIPROC_DIR=/run/t2mobile-metrics" in options["Environment"]
    assert options["ReadWritePaths"] == ["/run/t2mobile-metrics"]  # ProtectSystem=strict otherwise
    assert "t2mobile-metrics-dir.service" in words(head["Requires"]) + words(head["After"])
    directory = unit(UNITS / "t2mobile-metrics-dir.service")
    assert directory["Service"]["RuntimeDirectory"] == ["t2mobile-metrics"]
    assert directory["Service"]["RemainAfterExit"] == ["yes"]  # one process's restart keeps it
    assert directory["Unit"]["PartOf"] == ["t2mobile.target"]  # the gateway's restart empties it


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing(tmp_path):
    # verify insists that each command exists: stand-ins for the venv's and the backup script's
    assert [path.name for path in BACKUP_UNITS] == ["t2mobile-backup.service", "t2mobile-backup.timer"]
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    for program in ("python", "gunicorn", "celery"):
        (venv_bin / program).write_text("#!/bin/sh\n")
        (venv_bin / program).chmod(0o755)
    backup = tmp_path / "backup.sh"
    backup.write_text("#!/bin/sh\n")
    backup.chmod(0o755)
    copies = tmp_path / "units"
    copies.mkdir()
    for path in [*UNITS.iterdir(), *BACKUP_UNITS]:
        text = path.read_text().replace(VENV_BIN, str(venv_bin)).replace(BACKUP_SCRIPT, str(backup))
        (copies / path.name).write_text(text)
    verified = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(path) for path in copies.iterdir())],
        capture_output=True,
        text=True,
        cwd=copies,
    )
    # Any line is a finding (an unknown option or a bad value is only a warning, exit status 0).
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")
