"""The caller's address, for the per-address limits (failed partner authentication, admin login).

Behind a reverse proxy every request comes from the proxy, so ``REMOTE_ADDR`` alone would put all
callers in one bucket. ``X-Forwarded-For`` is believed only when the connection itself comes from
one of ``TRUSTED_PROXIES`` (addresses or networks of the proxies we run): then the header is read
from the right, each entry a trusted proxy wrote is skipped, and the first address no trusted proxy
vouches for is the caller. Entries to its left were written by the caller and are never trusted. A
caller that reaches gunicorn directly is known by its connection's address, whatever it sends.
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _trusted(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies if proxy.strip())


def trusted_proxy_networks() -> tuple[Network, ...]:
    """``TRUSTED_PROXIES`` parsed (ValueError on an entry that is no address or network)."""
    return _trusted(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    networks = trusted_proxy_networks()
    if not networks or not _is_trusted(remote, networks):
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for candidate in reversed([part for part in forwarded if part]):
        try:
            address = str(ipaddress.ip_address(candidate))
        except ValueError:
            return remote  # a proxy of ours wrote nonsense: fall back to the proxy's own address
        if not _is_trusted(address, networks):
            return address
    return remote
