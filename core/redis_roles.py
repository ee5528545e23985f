"""Redis's three roles, each on a database number of its own, all derived from one ``REDIS_URL``.

- the broker (Celery's queues): ``REDIS_URL``'s database n, or ``CELERY_BROKER_URL``;
- the cache (true caches: the catalogue, the Zoho access token, the organisation's time zone):
  database n+1, or ``REDIS_CACHE_URL``;
- the limits (rate-limit counters, locks, leases, the Zoho budget, queued markers, the marks health
  and the alerts read): database n+2, or ``REDIS_LIMITS_URL``.

Django's ``cache.clear()`` is FLUSHDB on the cache's database alone, so a deploy or a member of staff
clearing the cache never drops a queued job and never resets a count, lock, lease or budget. Without
``REDIS_URL`` (``make run`` on a bare machine) both caches are in-process (``LocMemCache``).

``limits`` is the Django cache of the limits role: the one place that names its alias.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.utils.connection import ConnectionProxy

#: Redis's default ``databases``: numbers 0 to 15.
REDIS_DATABASES = 16
LIMITS_ALIAS = "limits"
#: The offset of each role's database from ``REDIS_URL``'s.
ROLE_OFFSETS = {"broker": 0, "cache": 1, "limits": 2}
ROLE_SETTINGS = {"broker": "CELERY_BROKER_URL", "cache": "REDIS_CACHE_URL", "limits": "REDIS_LIMITS_URL"}

limits = ConnectionProxy(caches, LIMITS_ALIAS)


def redis_database_of(url: str) -> int:
    """The database number a Redis URL names: ``?db=`` (unix sockets), else the path, else 0."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    raw = query.get("db", "") if parts.scheme == "unix" else query.get("db") or parts.path.strip("/")
    try:
        return int(raw or 0)
    except ValueError:
        raise ImproperlyConfigured(f"REDIS_URL names database {raw!r}: expected a number from 0 to 15") from None


def redis_url_with_database(url: str, database: int) -> str:
    """``url`` naming ``database`` instead (host, password and options kept)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "unix" or "db" in query:
        query["db"] = str(database)
        return f"{url.partition('?')[0]}?{urlencode(query)}"  # urlunsplit would drop unix:///'s "//"
    return urlunsplit(parts._replace(path=f"/{database}"))


def redis_role_urls(base: str, *, broker: str = "", cache: str = "", limits: str = "") -> dict[str, str]:
    """Each role's URL: the one given, else ``base`` with the role's database number ("" without
    either). Refuses a base whose derived numbers run past Redis's last database."""
    given = {"broker": broker, "cache": cache, "limits": limits}
    urls = {role: url for role, url in given.items() if url}
    derived = [role for role in ROLE_OFFSETS if role not in urls]
    if not base or not derived:
        return {role: urls.get(role, "") for role in ROLE_OFFSETS}
    first = redis_database_of(base)
    past = [role for role in derived if first + ROLE_OFFSETS[role] >= REDIS_DATABASES]
    if past:
        names = ", ".join(ROLE_SETTINGS[role] for role in past)
        raise ImproperlyConfigured(
            f"REDIS_URL names Redis database {first}; the broker, cache and limits take it and the next "
            f"two ({first}, {first + 1}, {first + 2}) but Redis has databases 0 to {REDIS_DATABASES - 1}. "
            f"Use a database from 0 to {REDIS_DATABASES - 3}, or set {names}."
        )
    for role in derived:
        urls[role] = redis_url_with_database(base, first + ROLE_OFFSETS[role])
    return urls


def redis_caches(*, cache_url: str, limits_url: str, key_prefix: str = "t2m") -> dict:
    """Django's ``CACHES``: ``default`` (the cache role) and ``limits``, in Redis where a URL is given,
    else each in a store of its own in this process."""

    def one(url: str, location: str) -> dict:
        if not url:
            return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": location}
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": key_prefix,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }

    return {"default": one(cache_url, "cache"), LIMITS_ALIAS: one(limits_url, LIMITS_ALIAS)}
