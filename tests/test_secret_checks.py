"""Weak secrets do not start (issue 11, item 6): the system checks of ``t2mobile_portal/checks.py``.

Each check is an Error naming the setting and never its value, run by ``manage.py check`` (and so
by ``migrate`` and the Celery worker) and by ``wsgi.py`` for gunicorn.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.db import connection

from t2mobile_portal.checks import (
    TAG,
    check_api_keys,
    check_required_credentials,
    check_secret_key,
    check_webhook_secret,
)

ROOT = Path(__file__).resolve().parent.parent


def whsec(size: int) -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()


def ids(errors) -> list[str]:
    return [error.id for error in errors]


@pytest.mark.parametrize("secret", ["whsec_", whsec(16), whsec(23), "whsec_not base64!", "plain-text-secret-" * 3])
def test_a_short_or_malformed_webhook_secret_is_an_error_naming_the_setting(settings, secret):
    settings.T2MOBILE_WEBHOOK_SECRET = secret

    [error] = check_webhook_secret()

    assert error.id == "t2mobile.E001" and "T2MOBILE_WEBHOOK_SECRET" in error.msg
    assert secret.removeprefix("whsec_") not in error.msg + error.hint or secret == "whsec_"


@pytest.mark.parametrize("secret", ["", whsec(24), whsec(32), whsec(32).rstrip("=")])
def test_a_webhook_secret_of_24_bytes_or_more_or_none_passes(settings, secret):
    settings.T2MOBILE_WEBHOOK_SECRET = secret

    assert check_webhook_secret() == []


@pytest.mark.parametrize(
    "key",
    [
        "change-me-to-50-random-characters",  # the value .env.example used to ship
        "django-insecure-" + secrets.token_urlsafe(50),
        "insecure-development-key-only-for-debug",
        "Change-Me-" + secrets.token_urlsafe(50),
        secrets.token_urlsafe(30),  # 40 characters
        "abcd" * 20,  # long, but four distinct characters
    ],
)
def test_a_placeholder_or_weak_secret_key_is_an_error_when_debug_is_off(settings, key):
    settings.DEBUG = False
    settings.SECRET_KEY = key

    [error] = check_secret_key()

    assert error.id == "t2mobile.E002" and "SECRET_KEY" in error.msg
    assert key not in error.msg


def test_a_generated_secret_key_passes_and_debug_no_longer_allows_a_placeholder(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    assert check_secret_key() == []

    settings.DEBUG = True
    settings.SECRET_KEY = "insecure-development-key-only-for-debug"
    [error] = check_secret_key()
    assert error.id == "t2mobile.E002"


def _bare_env(**extra: str) -> dict:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    return {**env, "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings", **extra}


def test_debug_without_a_secret_key_stops_naming_it():
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=_bare_env(DEBUG="true", DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused"),
        capture_output=True,
        text=True,
    )

    assert started.returncode != 0
    assert "SECRET_KEY" in started.stderr and "ImproperlyConfigured" in started.stderr


@pytest.mark.parametrize("command", [["check", "--deploy"], ["migrate", "--check"]], ids=["check-deploy", "release"])
def test_production_start_up_without_credentials_names_each_missing_one_and_stops(command):
    env = _bare_env(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        ZOHO_CLIENT_ID="1000.present",
    )

    result = subprocess.run(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    output = result.stdout + result.stderr
    for name in (
        "ZOHO_CLIENT_SECRET",
        "ZOHO_REFRESH_TOKEN",
        "ZOHO_ORGANIZATION_ID",
        "T2MOBILE_API_KEYS",
        "T2MOBILE_WEBHOOK_SECRET",
    ):
        assert f"{name} is empty" in output, output[-2000:]
    assert "ZOHO_CLIENT_ID is empty" not in output


def test_partner_credentials_in_the_admin_need_only_the_zoho_ones(settings):
    settings.REQUIRE_CREDENTIALS = True
    settings.PARTNER_CREDENTIALS_IN_ADMIN = True
    settings.T2MOBILE_API_KEYS, settings.T2MOBILE_WEBHOOK_SECRET = [], ""
    for name in ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ORGANIZATION_ID"):
        setattr(settings, name, "present")

    assert check_required_credentials() == []


def test_an_api_key_under_32_characters_is_an_error_naming_the_setting_not_the_key(settings):
    short = "t2m_" + secrets.token_urlsafe(12)
    settings.T2MOBILE_API_KEYS = [secrets.token_urlsafe(32), short]

    [error] = check_api_keys()

    assert error.id == "t2mobile.E003" and "T2MOBILE_API_KEYS" in error.msg and "key 2 of 2" in error.msg
    assert short not in error.msg + error.hint


def test_long_api_keys_or_none_pass(settings):
    settings.T2MOBILE_API_KEYS = [secrets.token_urlsafe(32), "t2m_demo_" + secrets.token_urlsafe(24)]
    assert check_api_keys() == []
    settings.T2MOBILE_API_KEYS = []
    assert check_api_keys() == []


def test_the_test_settings_pass_the_checks():
    assert [error for error in run_checks(tags=[TAG]) if error.is_serious()] == []


# --- The processes: manage.py check, gunicorn's wsgi import, make run's environment ----------------


def bare_env(**values: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update({"DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings", **values})
    return env


def env_example(**filled: str) -> dict[str, str]:
    """``.env.example`` as an operator copies it, with ``filled`` values typed in."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    values.update(filled)
    values["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/unused"  # check needs no database
    return bare_env(**values)


def manage_check(env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_manage_py_check_refuses_the_old_env_example_values():
    env = env_example(
        SECRET_KEY="change-me-to-50-random-characters",
        T2MOBILE_WEBHOOK_SECRET="whsec_",
        T2MOBILE_API_KEYS="short-key-1,short-key-2",
    )

    result = manage_check(env)

    assert result.returncode != 0
    for name in ("t2mobile.E001", "t2mobile.E002", "t2mobile.E003"):
        assert name in result.stderr
    assert "short-key-1" not in result.stderr + result.stdout


def test_env_example_filled_in_as_its_comments_say_passes_manage_py_check():
    env = env_example(
        SECRET_KEY=secrets.token_urlsafe(50),
        T2MOBILE_WEBHOOK_SECRET=whsec(32),
        T2MOBILE_API_KEYS=secrets.token_urlsafe(32),
        ZOHO_CLIENT_ID="1000.CLIENTID",
        ZOHO_CLIENT_SECRET=secrets.token_hex(16),
        ZOHO_REFRESH_TOKEN="1000." + secrets.token_hex(16),
        ZOHO_ORGANIZATION_ID="60012345678",
    )

    result = manage_check(env)

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_web_process_with_a_weak_webhook_secret_does_not_start():
    env = bare_env(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), T2MOBILE_WEBHOOK_SECRET="whsec_")

    started = subprocess.run(
        [sys.executable, "-c", "import t2mobile_portal.wsgi"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr and "T2MOBILE_WEBHOOK_SECRET" in started.stderr


def test_make_runs_generated_environment_passes_the_checks(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_local", ROOT / "scripts" / "run_local.py")
    run_local = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_local)
    monkeypatch.setattr(run_local, "RUN_DIR", tmp_path)
    for name in ("SECRET_KEY", "T2MOBILE_API_KEYS", "T2MOBILE_WEBHOOK_SECRET", "DJANGO_SETTINGS_MODULE", "DEBUG"):
        monkeypatch.delenv(name, raising=False)

    env = run_local.environment()
    env["DEBUG"] = "false"  # the strictest case: make run's secrets would pass in production too
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/unused"

    result = manage_check(env)

    assert result.returncode == 0, result.stdout + result.stderr
