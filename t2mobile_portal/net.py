"""The caller's address, for the per-address limits (failed partner authentication, admin login).

Behind a reverse proxy every request comes from the proxy, so ``REMOTE_ADDR`` alone would put all
callers in one bucket. With ``TRUSTED_PROXY_COUNT`` = N (the proxies we run, each appending the
address it saw to ``X-Forwarded-For``), the caller is the N-th entry from the right: the entries to
its left were written by the caller and are never trusted.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        return remote  # not through all of our proxies: the connection's own address
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
