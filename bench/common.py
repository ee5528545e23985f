"""What the benchmark scripts share: where PostgreSQL is, a free port, SQL on the ``postgres``
database (to create and drop each script's own database), and the production-like environment the
service runs with. Zoho is always the local ZOHO SANDBOX, never the real one."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import redis

from core.redis_roles import redis_role_urls

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin_sql(sql: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def redis_flush(url: str) -> None:
    """Empty every Redis database the service derives from ``url``: broker, cache and limits."""
    for role_url in redis_role_urls(url).values():
        with redis.Redis.from_url(role_url) as client:
            client.flushdb()


def service_env(*, database: str, redis_url: str, **overrides: str) -> dict[str, str]:
    """This process's environment plus the production settings on ``database`` and ``redis_url``."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-" + "x" * 40,
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": f"{PG}/{database}",
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            # the sandbox's credentials and partner secrets made per benchmark: nothing real is needed
            "ZOHO_CLIENT_ID": "sandbox-client",
            "ZOHO_CLIENT_SECRET": "sandbox-secret",
            "ZOHO_REFRESH_TOKEN": "sandbox-refresh-token",
            "ZOHO_ORGANIZATION_ID": "60012345678",
            "PARTNER_CREDENTIALS_IN_ADMIN": "true",
        }
    )
    env.update(overrides)
    return env


def goal_line(figure: str, value: float, goal: float, *, unit: str = "", higher_is_better: bool = True) -> str:
    """One line of issue 14's table: the figure, its goal and whether this run met it; every
    benchmark prints its figures through this, so ``make bench`` shows each beside its goal."""
    met = value >= goal if higher_is_better else value <= goal
    sign = "≥" if higher_is_better else "≤"
    return f"  GOAL {figure}: {value:,.2f}{unit} (goal {sign} {goal:,.2f}{unit}) — {'met' if met else 'NOT MET'}"
