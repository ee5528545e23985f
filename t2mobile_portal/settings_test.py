"""Settings for the test suite: the production settings with test defaults for the environment.

Tests run against a real PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``); each value below is
only a default, so CI or a developer can point them elsewhere.
"""

import os
import secrets

# Generated per run (and inherited by the processes the tests start): it passes the weak-secret checks.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("T2MOBILE_RATE_LIMIT", "100000/m")
os.environ.setdefault("AUTH_FAILURE_RATE_LIMIT", "100000/m")
os.environ.setdefault("CONN_MAX_AGE", "0")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
# The suite configures Zoho and the partner per test (fixtures), not from the environment.
os.environ.setdefault("REQUIRE_CREDENTIALS", "false")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")

from t2mobile_portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
