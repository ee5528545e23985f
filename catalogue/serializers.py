"""The catalogue as the partner reads it (``GET /t2mobile/products``): the OpenAPI shape of the answer."""

from __future__ import annotations

from rest_framework import serializers

from catalogue.models import Tenure


class PlanSerializer(serializers.Serializer):
    tenure = serializers.ChoiceField(choices=Tenure.values)
    price = serializers.CharField()


class ProductSerializer(serializers.Serializer):
    productId = serializers.CharField()
    sku = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    plans = PlanSerializer(many=True)


class CatalogueSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    partnerId = serializers.CharField(
        help_text="The calling partner's partner id (ICONTECH001 for T2Mobile); each partner sees its own."
    )
    currency = serializers.CharField()
    updatedAt = serializers.CharField(allow_null=True)
    products = ProductSerializer(many=True)
