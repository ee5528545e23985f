"""The partner API's error envelope, and the one place where exceptions become it.

Every non-2xx answer under ``/t2mobile/`` has the body
``{"success": false, "errorCode", "message", "details"?, "requestId"}``. Domain code raises
``PartnerApiError`` subclasses; DRF's own exceptions (parse, auth, throttle, 404, 405, 415) and
anything unexpected are mapped here too, so no view builds an error body by hand and no answer
leaks a stack trace, SQL or a hostname.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found, server_error
from rest_framework import exceptions as drf_exceptions
from rest_framework import status as http
from rest_framework.response import Response

from core.logging import request_id_var

logger = logging.getLogger(__name__)


class PartnerApiError(Exception):
    """A contract error: HTTP status, stable UPPER_SNAKE_CASE code, a sentence, optional details."""

    status_code = http.HTTP_400_BAD_REQUEST
    error_code = "VALIDATION_ERROR"
    message = "The request is not valid."

    def __init__(self, message: str | None = None, *, details: dict | None = None):
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)


def _error(status_code: int, code: str, message: str) -> type[PartnerApiError]:
    return type(
        code.title().replace("_", ""),
        (PartnerApiError,),
        {
            "status_code": status_code,
            "error_code": code,
            "message": message,
        },
    )


ValidationFailed = _error(400, "VALIDATION_ERROR", "The request has invalid fields.")
MalformedJson = _error(400, "MALFORMED_JSON", "The request body is not a JSON object.")
IdempotencyKeyMissing = _error(
    400,
    "IDEMPOTENCY_KEY_MISSING",
    "The Idempotency-Key header is required: 1 to 255 printable ASCII characters.",
)
UnknownProduct = _error(400, "UNKNOWN_PRODUCT", "The product is not in the published catalogue.")
TenureNotOffered = _error(400, "TENURE_NOT_OFFERED", "The product is not sold for that tenure.")
RenewalTargetNotFound = _error(
    400,
    "RENEWAL_TARGET_NOT_FOUND",
    "renewalOf does not name a fulfilled order of this customer and product.",
)
Unauthorized = _error(401, "UNAUTHORIZED", "A valid API key is required.")
OrderNotFound = _error(404, "ORDER_NOT_FOUND", "No order with that id.")
EventNotFound = _error(404, "EVENT_NOT_FOUND", "No webhook event with that id.")
NotFound = _error(404, "NOT_FOUND", "There is nothing at this path.")
MethodNotAllowed = _error(405, "METHOD_NOT_ALLOWED", "This method is not allowed here.")
DuplicateOrder = _error(409, "DUPLICATE_ORDER", "An order with this orderId already exists.")
RequestInProgress = _error(409, "REQUEST_IN_PROGRESS", "A request with this Idempotency-Key is still being handled.")
PayloadTooLarge = _error(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 64 KiB.")
#: The longest path plus query the partner API reads; gunicorn lets request lines up to 8,190 bytes in.
MAX_URL_CHARS = 4096
UriTooLong = _error(414, "URI_TOO_LONG", "The request's path and query are longer than 4,096 characters.")
UnsupportedMediaType = _error(415, "UNSUPPORTED_MEDIA_TYPE", "The request body must be application/json.")
IdempotencyKeyReused = _error(
    422,
    "IDEMPOTENCY_KEY_REUSED",
    "This Idempotency-Key was used before with a different request body.",
)
RateLimited = _error(429, "RATE_LIMITED", "Too many requests; retry after the given delay.")
InternalError = _error(500, "INTERNAL_ERROR", "Something went wrong on our side; it has been logged.")
ServiceUnavailable = _error(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable; nothing was stored.")

#: Every error code of the contract, for the OpenAPI schema and its drift test.
ERROR_CODES: dict[str, int] = {
    cls.error_code: cls.status_code
    for cls in (
        ValidationFailed,
        MalformedJson,
        IdempotencyKeyMissing,
        UnknownProduct,
        TenureNotOffered,
        RenewalTargetNotFound,
        Unauthorized,
        OrderNotFound,
        EventNotFound,
        NotFound,
        MethodNotAllowed,
        DuplicateOrder,
        RequestInProgress,
        PayloadTooLarge,
        UriTooLong,
        UnsupportedMediaType,
        IdempotencyKeyReused,
        RateLimited,
        InternalError,
        ServiceUnavailable,
    )
}


def error_body(code: str, message: str, details: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "errorCode": code, "message": message}
    if details:
        body["details"] = details
    body["requestId"] = request_id_var.get()
    return body


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for field, errors in detail.items():
            key = "body" if field == "non_field_errors" else field
            if isinstance(errors, dict):
                for sub, sub_errors in field_errors(errors).items():
                    out[f"{key}.{sub}"] = sub_errors
            else:
                out[key] = [str(e) for e in (errors if isinstance(errors, list) else [errors])]
        return out
    return {"body": [str(e) for e in (detail if isinstance(detail, list) else [detail])]}


def as_partner_error(exc: BaseException) -> tuple[PartnerApiError, dict[str, str]]:
    """The contract error for any exception, with the extra headers it needs."""
    headers: dict[str, str] = {}
    if isinstance(exc, PartnerApiError):
        return exc, headers
    if isinstance(exc, drf_exceptions.Throttled):
        wait = max(1, math.ceil(exc.wait or 1))
        headers["Retry-After"] = str(wait)
        return RateLimited(f"Too many requests; retry after {wait} seconds."), headers
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        headers["WWW-Authenticate"] = "Bearer"
        return Unauthorized(), headers
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return UnsupportedMediaType(), headers
    if isinstance(exc, drf_exceptions.ParseError):
        return MalformedJson("The request body is not valid JSON."), headers
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MethodNotAllowed(), headers
    if isinstance(exc, drf_exceptions.ValidationError):
        return ValidationFailed(details=field_errors(exc.detail)), headers
    if isinstance(exc, (drf_exceptions.NotFound, Http404)):
        return NotFound(), headers
    if isinstance(exc, (drf_exceptions.PermissionDenied, PermissionDenied)):
        headers["WWW-Authenticate"] = "Bearer"
        return Unauthorized(), headers
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(), headers
    if isinstance(exc, SuspiciousOperation):  # e.g. TooManyFieldsSent: over 1,000 query parameters
        return ValidationFailed("The request is not acceptable."), headers
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable: %s", type(exc).__name__)
        return ServiceUnavailable(), headers
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
        return InternalError(), headers
    logger.exception("unhandled error")
    return InternalError(), headers


def partner_exception_handler(exc: BaseException, context: dict) -> Response:
    """DRF ``EXCEPTION_HANDLER``: every exception in a DRF view becomes the envelope."""
    error, headers = as_partner_error(exc)
    response = Response(
        error_body(error.error_code, error.message, error.details),
        status=error.status_code,
        headers=headers,
    )
    # A failed request must leave nothing half-written: roll back any open atomic block.
    from rest_framework.views import set_rollback  # noqa: PLC0415 (DRF's views load our parser, which imports this module)

    set_rollback()
    return response


def error_response(error: PartnerApiError, headers: dict[str, str] | None = None) -> JsonResponse:
    """The envelope as a plain Django response, for middleware and Django's own handlers."""
    response = JsonResponse(error_body(error.error_code, error.message, error.details), status=error.status_code)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# --- Django's handlers under /t2mobile/: the envelope, not HTML ---------------------------------


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Any other path under /t2mobile/, whatever the method: the NOT_FOUND envelope (no auth needed
    to learn that; exempt from Django's CSRF check, whose HTML 403 would answer a POST first: the
    partner API takes no cookies, so there is nothing to forge)."""
    return error_response(NotFound())


def json_not_found(request, exception=None):
    if request.path.startswith("/t2mobile/"):
        return error_response(NotFound())

    return page_not_found(request, exception)


def json_server_error(request):
    if request.path.startswith("/t2mobile/"):
        return error_response(InternalError())

    return server_error(request)
