"""``GET /t2mobile/products``: the published catalogue, with an ETag (304 while unchanged)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from catalogue.selectors import catalogue_document
from catalogue.serializers import CatalogueSerializer
from t2mobile_portal.openapi import REQUEST_ID_HEADER, error_responses


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
        body, etag = catalogue_document()
        if etag in [tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]:
            return Response(status=304, headers={"ETag": etag})
        return Response({"success": True, "partnerId": settings.PARTNER_ID, **body}, headers={"ETag": etag})
