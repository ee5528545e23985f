"""drf-spectacular post-processing: contract paths without trailing slashes, and the response
headers of the contract (X-Request-ID everywhere, WWW-Authenticate on 401, Retry-After on 429,
Idempotent-Replayed on the intake's 202, ETag on the catalogue) that DRF views cannot declare;
and the schema and docs views, whose errors (401 without a key or a staff session, 405, a bad
``?format=``) are the JSON envelope like every other answer under ``/t2mobile/``, not YAML or HTML.
"""

from __future__ import annotations

from urllib.parse import quote

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core import errors

HEADER_DOCS = {
    "X-Request-ID": "The caller's request id when it was sane (≤ 128 chars of [A-Za-z0-9._-]), else a new one.",
    "WWW-Authenticate": "Always `Bearer`.",
    "Retry-After": "Whole seconds to wait before retrying.",
    "Idempotent-Replayed": "`true` when this answer is the stored answer of an earlier request with the same key.",
    "ETag": "Catalogue version; send it back in If-None-Match to get 304 while unchanged.",
    "Location": "The order's status URL.",
}


def _header(name: str) -> dict:
    return {"schema": {"type": "string"}, "description": HEADER_DOCS[name]}


def contract_paths_and_headers(result, generator, request, public):
    paths = {}
    for path, item in result.get("paths", {}).items():
        if path.startswith("/t2mobile/") and not path.startswith(("/t2mobile/schema", "/t2mobile/docs")):
            path = path.rstrip("/")
        paths[path] = item
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = _header("X-Request-ID")
                if status == "401":
                    headers["WWW-Authenticate"] = _header("WWW-Authenticate")
                if status == "429":
                    headers["Retry-After"] = _header("Retry-After")
                if status == "202" and path == "/t2mobile/fulfilment":
                    headers["Idempotent-Replayed"] = _header("Idempotent-Replayed")
                    headers["Location"] = _header("Location")
                if path == "/t2mobile/products" and status in ("200", "304"):
                    headers["ETag"] = _header("ETag")
    result["paths"] = paths
    return result


class JsonErrorsMixin:
    """Render every error answer of the view as JSON, whatever renderer the request negotiated."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.status_code == 401 and isinstance(response.data, dict):
            # A person who opened the docs in a browser: where to sign in, and back here after.
            sign_in = f"/admin/login/?next={quote(request.path)}"
            response.data["message"] = (
                "Send your API key as 'Authorization: Bearer <key>', or sign in as staff at /admin/ "
                "and open this page again."
            )
            response.data["details"] = {"signIn": [sign_in]}
        if isinstance(response, Response) and response.status_code >= 400:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
            response.template_name = None
        return response


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


class DocsView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served at ``?script`` rather than inline, so that the
    Content-Security-Policy allows no inline script."""


class ErrorSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    errorCode = serializers.ChoiceField(choices=sorted(errors.ERROR_CODES))
    message = serializers.CharField()
    details = serializers.DictField(required=False)
    requestId = serializers.CharField()


# --- The shared headers and errors of every operation --------------------------------------------

REQUEST_ID_HEADER = OpenApiParameter(
    "X-Request-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Your id for this request (≤ 128 chars of [A-Za-z0-9._-]); echoed back, else generated.",
)


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error codes, grouped by HTTP status."""
    by_status: dict[int, list[str]] = {}
    for code in ("UNAUTHORIZED", "URI_TOO_LONG", "RATE_LIMITED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", *codes):
        by_status.setdefault(errors.ERROR_CODES[code], []).append(code)
    return {
        status: OpenApiResponse(
            response=ErrorSerializer,
            description="Error envelope; errorCode is one of: " + ", ".join(sorted(set(found))),
            examples=[
                OpenApiExample(
                    code,
                    value={"success": False, "errorCode": code, "message": "…", "requestId": "…"},
                    status_codes=[str(status)],
                )
                for code in sorted(set(found))
            ],
        )
        for status, found in by_status.items()
    }
