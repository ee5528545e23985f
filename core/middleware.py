"""Request-level guards that run before any view.

``RequestIdMiddleware`` gives every answer an ``X-Request-ID`` (the caller's when it is sane) and
binds it to the log context; it also writes one JSON access-log line per request.
``PartnerApiGuardMiddleware`` refuses oversized bodies under ``/t2mobile/`` with 413 before Django
reads them, a ``Host`` not in ``ALLOWED_HOSTS`` with the 400 envelope (before Django's own HTML 400
or, under DEBUG, its debug page), NUL in the path or query and a non-ASCII ``Authorization``, and
turns anything that escapes a view there into the envelope.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings
from django.core.exceptions import DisallowedHost

from core.errors import (
    MAX_URL_CHARS,
    PayloadTooLarge,
    Unauthorized,
    UriTooLong,
    ValidationFailed,
    as_partner_error,
    error_response,
)
from core.logging import order_id_var, request_id_var

logger = logging.getLogger("t2mobile.access")
security_logger = logging.getLogger("django.security.DisallowedHost")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
API_PREFIX = "/t2mobile/"


def _request_id_from(header: str | None) -> str:
    if header and _SANE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = _request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        order_token = order_id_var.set(None)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if request.path.startswith(API_PREFIX):
                logger.info(
                    "request",
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            return response
        finally:
            request_id_var.reset(token)
            order_id_var.reset(order_token)


def _refuse_hostile_request_line(request):
    """A path and query over ``MAX_URL_CHARS`` is a 414; NUL in the path or query (PostgreSQL refuses
    it in any lookup) is a 400; an Authorization
    header that is not printable ASCII can hold no key of ours and is a 401 before any lookup."""
    if len(request.META.get("PATH_INFO", "")) + len(request.META.get("QUERY_STRING", "")) > MAX_URL_CHARS:
        return error_response(UriTooLong())
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        return error_response(ValidationFailed(details={"request": ["NUL characters are not accepted."]}))
    authorization = request.META.get("HTTP_AUTHORIZATION")
    if authorization is not None and any(not 0x20 <= ord(char) <= 0x7E for char in authorization):
        response = error_response(Unauthorized())
        response["WWW-Authenticate"] = "Bearer"
        return response
    return None


class PartnerApiGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            try:
                request.get_host()
            except DisallowedHost:
                security_logger.warning("request to a host not in ALLOWED_HOSTS refused")  # never the value
                return error_response(
                    ValidationFailed(
                        "The Host header does not name this service.", details={"Host": ["Not served here."]}
                    )
                )
            refused = _refuse_hostile_request_line(request)
            if refused is not None:
                return refused
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.PARTNER_API_MAX_BODY_BYTES:
                return error_response(PayloadTooLarge())
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        error, headers = as_partner_error(exception)
        return error_response(error, headers)


#: The admin and the docs page load scripts, styles and images from this service only: no inline
#: script runs (the docs' Swagger UI loads its start-up script from a URL of its own), nothing may
#: frame a page, and forms post only back here. Inline styles stay allowed (the admin's templates
#: and Swagger UI set them; they run no code).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
