"""``scripts/audit_dependencies.sh`` run against a stand-in pip-audit (``PIP_AUDIT``) that answers
the way pip-audit 2.10 does: its JSON report (``-f json -o``) and its one-line summary on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "audit_dependencies.sh"

NOT_FOUND = "Dependency not found on PyPI and could not be audited: {name} ({version})"


def fake_pip_audit(tmp_path: Path, *, dependencies: list[dict], stderr: str, exit_code: int) -> Path:
    fake = tmp_path / "pip-audit"
    report = json.dumps({"dependencies": dependencies, "fixes": []})
    fake.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import sys
            args = sys.argv[1:]
            assert args[args.index("-f") + 1] == "json", args
            with open(args[args.index("-o") + 1], "w") as out:
                out.write({report!r})
            print({stderr!r}, file=sys.stderr)
            sys.exit({exit_code})
            """
        )
    )
    fake.chmod(0o755)
    return fake


def run_audit(fake: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_AUDIT": str(fake)}
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def skipped(name: str, version: str = "1.0") -> dict:
    return {"name": name, "skip_reason": NOT_FOUND.format(name=name, version=version)}


def test_nothing_looked_up_says_not_audited_with_the_count_and_never_no_vulnerabilities(tmp_path):
    fake = fake_pip_audit(
        tmp_path,
        dependencies=[skipped(f"package-{n}") for n in range(48)],
        stderr="No known vulnerabilities found",
        exit_code=0,
    )

    result = run_audit(fake)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "dependency audit: not audited: 0 of 48 packages could be looked up (exit 0)"
    )
    assert "No known vulnerabilities found" not in result.stdout
    assert f"  e.g. {NOT_FOUND.format(name='package-0', version='1.0')}" in result.stdout


def test_a_real_finding_is_printed_and_fails_the_audit(tmp_path):
    fake = fake_pip_audit(
        tmp_path,
        dependencies=[
            {
                "name": "django",
                "version": "5.2.19",
                "vulns": [{"id": "PYSEC-2099-1", "fix_versions": ["5.2.20"], "aliases": [], "description": "x"}],
            },
            {"name": "requests", "version": "2.34.2", "vulns": []},
            skipped("kombu", "5.7.0"),
        ],
        stderr="Found 1 known vulnerability in 1 package",
        exit_code=1,
    )

    result = run_audit(fake)

    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert "  django 5.2.19 PYSEC-2099-1 (fixed in: 5.2.20)" in lines
    assert "dependency audit: exit 1, 2 of 3 packages audited, 1 could not be looked up" in lines
    assert lines[-1] == "dependency audit FAILED: known vulnerabilities above"


def test_some_packages_audited_and_clean_passes_with_the_counts(tmp_path):
    fake = fake_pip_audit(
        tmp_path,
        dependencies=[{"name": "requests", "version": "2.34.2", "vulns": []}, skipped("kombu")],
        stderr="No known vulnerabilities found",
        exit_code=0,
    )

    result = run_audit(fake)

    assert result.returncode == 0
    assert "No known vulnerabilities found" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == (
        "dependency audit: exit 0, 1 of 2 packages audited, 1 could not be looked up"
    )


def test_pip_audit_stopping_before_its_report_is_not_audited_and_not_a_failure(tmp_path):
    fake = tmp_path / "pip-audit"
    fake.write_text("#!/bin/sh\necho 'ConnectionError: Could not connect to PyPI' >&2\nexit 1\n")
    fake.chmod(0o755)

    result = run_audit(fake)

    assert result.returncode == 0
    assert "ConnectionError: Could not connect to PyPI" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == (
        "dependency audit: not audited (pip-audit exit 1 before looking up any package)"
    )
