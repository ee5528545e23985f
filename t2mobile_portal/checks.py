"""System checks that refuse weak secrets (``manage.py check``, ``migrate``, the Celery worker, gunicorn).

A webhook secret that anyone can sign with, a placeholder ``SECRET_KEY`` or a guessable API key
would otherwise start fine and serve. Each check is an Error naming the setting (never its value),
so a deploy stops at its release step (``migrate``) and a web process at import of ``wsgi.py``.
With DEBUG off (``REQUIRE_CREDENTIALS``), an empty Zoho credential is an error, and so is an empty
``T2MOBILE_WEBHOOK_SECRET`` or ``T2MOBILE_API_KEYS`` unless ``PARTNER_CREDENTIALS_IN_ADMIN`` says the
partner's secrets are managed in the admin (the sync from the environment then leaves them alone).
"""

from __future__ import annotations

import base64
import binascii
import os

from django.conf import settings
from django.core.checks import Error, Tags, register, run_checks
from django.core.exceptions import ImproperlyConfigured

from core.net import trusted_proxy_networks

TAG = "t2mobile_secrets"
WEBHOOK_SECRET_MIN_BYTES = 24
API_KEY_MIN_CHARS = 32
# Django's own rule (security.W009) plus the placeholders this project has shipped or uses in DEBUG.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
SECRET_KEY_PLACEHOLDERS = (
    "django-insecure",
    "change-me",
    "changeme",
    "insecure-development-key",
    "test-only-not-a-secret",
)
GENERATE = {
    "SECRET_KEY": 'python -c "import secrets; print(secrets.token_urlsafe(50))"',
    "T2MOBILE_WEBHOOK_SECRET": (
        "python -c \"import base64, secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
    ),
    "T2MOBILE_API_KEYS": "python manage.py create_api_key --partner <id>, or "
    'python -c "import secrets; print(secrets.token_urlsafe(32))"',
}


def webhook_secret_key_bytes(secret: str) -> int | None:
    """Bytes of HMAC key in a ``whsec_<base64>`` secret; None when it is not one."""
    if not secret.startswith("whsec_"):
        return None
    encoded = secret.removeprefix("whsec_")
    try:
        return len(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None


def check_webhook_secret(app_configs=None, **kwargs) -> list[Error]:
    secret = getattr(settings, "T2MOBILE_WEBHOOK_SECRET", "") or ""
    if not secret:
        return []
    size = webhook_secret_key_bytes(secret)
    if size is None:
        message = "T2MOBILE_WEBHOOK_SECRET is not a whsec_<base64> secret."
    elif size < WEBHOOK_SECRET_MIN_BYTES:
        message = f"T2MOBILE_WEBHOOK_SECRET holds {size} bytes of key; at least {WEBHOOK_SECRET_MIN_BYTES} are needed."
    else:
        return []
    return [Error(message, hint=f"Generate one: {GENERATE['T2MOBILE_WEBHOOK_SECRET']}", id="t2mobile.E001")]


def check_secret_key(app_configs=None, **kwargs) -> list[Error]:
    # DEBUG or not: a public key signs sessions and derives nothing safe (make run generates one).
    key = str(getattr(settings, "SECRET_KEY", "") or "")
    lowered = key.lower()
    if any(lowered.startswith(placeholder) or placeholder in lowered for placeholder in SECRET_KEY_PLACEHOLDERS):
        reason = "is a placeholder"
    elif len(key) < SECRET_KEY_MIN_LENGTH:
        reason = f"is shorter than {SECRET_KEY_MIN_LENGTH} characters"
    elif len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        reason = f"has fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS} unique characters"
    else:
        return []
    return [
        Error(
            f"SECRET_KEY {reason}; it must be long and random, DEBUG or not.",
            hint=f"Generate one: {GENERATE['SECRET_KEY']}",
            id="t2mobile.E002",
        )
    ]


def check_api_keys(app_configs=None, **kwargs) -> list[Error]:
    keys = [key for key in getattr(settings, "T2MOBILE_API_KEYS", []) or [] if key]
    short = [index for index, key in enumerate(keys, start=1) if len(key) < API_KEY_MIN_CHARS]
    if not short:
        return []
    positions = ", ".join(str(index) for index in short)
    return [
        Error(
            f"T2MOBILE_API_KEYS: key {positions} of {len(keys)} is shorter than {API_KEY_MIN_CHARS} characters.",
            hint=f"Generate one: {GENERATE['T2MOBILE_API_KEYS']}",
            id="t2mobile.E003",
        )
    ]


def check_trusted_proxies(app_configs=None, **kwargs) -> list[Error]:
    """Every TRUSTED_PROXIES entry is an address or a network; TRUSTED_PROXY_COUNT is gone."""
    errors = []
    try:
        trusted_proxy_networks()
    except ValueError as exc:
        errors.append(Error(f"TRUSTED_PROXIES: {exc}", hint="e.g. 127.0.0.1 or 10.0.0.0/24", id="t2mobile.E004"))
    if os.environ.get("TRUSTED_PROXY_COUNT"):
        errors.append(
            Error(
                "TRUSTED_PROXY_COUNT is no longer read: it let any caller choose its address in X-Forwarded-For.",
                hint="Set TRUSTED_PROXIES to the address or network of your reverse proxies.",
                id="t2mobile.E005",
            )
        )
    return errors


ZOHO_CREDENTIALS = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ORGANIZATION_ID")


def check_required_credentials(app_configs=None, **kwargs) -> list[Error]:
    """Production start-up (``REQUIRE_CREDENTIALS``, on when DEBUG is off) names each missing one."""
    if not getattr(settings, "REQUIRE_CREDENTIALS", False):
        return []
    required = list(ZOHO_CREDENTIALS)
    if not settings.PARTNER_CREDENTIALS_IN_ADMIN:
        required += ["T2MOBILE_API_KEYS", "T2MOBILE_WEBHOOK_SECRET"]
    missing = [name for name in required if not getattr(settings, name, None)]
    return [
        Error(
            f"{name} is empty: the service cannot run in production without it.",
            hint=(
                "Set it in the environment (.env.example says what each is)"
                + (
                    "; or PARTNER_CREDENTIALS_IN_ADMIN=true when the partner's keys and secret are made in the admin"
                    if name.startswith("T2MOBILE_")
                    else ""
                )
            ),
            id="t2mobile.E006",
        )
        for name in missing
    ]


def secrets_refuse_weak() -> None:
    """Raise ``ImproperlyConfigured`` when a secret check fails (for processes that run no checks)."""
    errors = [error for error in run_checks(tags=[TAG]) if error.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{error.id}: {error.msg}" for error in errors))


def secret_checks_register() -> None:
    """Called by ``BackOfficeAdminConfig.ready``."""
    for check in (
        check_webhook_secret,
        check_secret_key,
        check_api_keys,
        check_trusted_proxies,
        check_required_credentials,
    ):
        register(check, Tags.security, TAG)
