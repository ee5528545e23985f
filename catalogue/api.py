"""``GET /t2mobile/products``: the published catalogue, with an ETag (304 while unchanged).

The catalogue is shared by every partner and cached once (``catalogue_document``); the calling
partner's ``partnerId`` is filled in after the cache, and its ETag is the catalogue's made
particular to the partner, so that one tag never stands for two different bodies.
"""

from __future__ import annotations

import hashlib

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from catalogue.selectors import catalogue_document
from catalogue.serializers import CatalogueSerializer
from core.openapi import REQUEST_ID_HEADER, error_responses
from partners.models import Partner


def partner_etag(*, etag: str, partner: Partner) -> str:
    """The catalogue's ETag for one partner's answer (the body differs by ``partnerId``)."""
    digest = hashlib.sha256(f"{etag}:{partner.partner_id}".encode()).hexdigest()[:32]
    return f'"{digest}"'


class ProductsView(APIView):
    @extend_schema(
        operation_id="listProducts",
        summary="The published catalogue",
        parameters=[
            REQUEST_ID_HEADER,
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="An ETag from an earlier answer; 304 when unchanged.",
            ),
        ],
        responses={200: CatalogueSerializer, 304: OpenApiResponse(description="Not modified"), **error_responses()},
    )
    def get(self, request):
        partner = request.user
        body, catalogue_etag = catalogue_document()
        etag = partner_etag(etag=catalogue_etag, partner=partner)
        if etag in [tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]:
            return Response(status=304, headers={"ETag": etag})
        return Response({"success": True, "partnerId": partner.partner_id, **body}, headers={"ETag": etag})
