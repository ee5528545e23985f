"""Reads of the catalogue: what is published (cached for GET /products, with its ETag), and the
catalogue sync runs for the admin overview."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.cache import cache
from django.db.models import Max, Prefetch, QuerySet

from catalogue.models import CatalogueSync, Product, ProductPlan
from core.outage import redis_breaker
from core.times import iso_utc

CATALOGUE_CACHE_KEY = "catalogue:published:v1"
CATALOGUE_CACHE_SECONDS = 300


def last_catalogue_sync(*, successful: bool = False) -> CatalogueSync | None:
    """The latest catalogue sync (or the latest that finished well)."""
    runs = CatalogueSync.objects.all()
    if successful:
        runs = runs.filter(status=CatalogueSync.Status.DONE)
    return runs.order_by("-started_at").first()


def published_products() -> QuerySet[Product]:
    active_plans = ProductPlan.objects.filter(is_active=True).order_by("price", "tenure")
    return (
        Product.objects.filter(is_published=True, zoho_status=Product.ZohoStatus.ACTIVE, plans__is_active=True)
        .distinct()
        .order_by("name", "item_id")
        .prefetch_related(Prefetch("plans", queryset=active_plans, to_attr="active_plans"))
    )


def published_product(item_id: str) -> Product | None:
    return Product.objects.filter(item_id=item_id, is_published=True, zoho_status=Product.ZohoStatus.ACTIVE).first()


def published_plan(item_id: str, tenure: str) -> ProductPlan | None:
    """The active plan of a published, active product for a tenure, with its product, in one query."""
    return (
        ProductPlan.objects.select_related("product")
        .filter(
            product__item_id=item_id,
            product__is_published=True,
            product__zoho_status=Product.ZohoStatus.ACTIVE,
            tenure=tenure,
            is_active=True,
        )
        .first()
    )


def catalogue_invalidate() -> None:
    """After a catalogue change commits. While Redis is down the change still stands (a copy cached
    before the outage lapses within CATALOGUE_CACHE_SECONDS)."""
    try:
        cache.delete(CATALOGUE_CACHE_KEY)
    except Exception as exc:  # redis raises many types
        redis_breaker.failed(exc, fallback="the catalogue is read from the database")


def _catalogue_cached() -> dict | None:
    if not redis_breaker.available():
        return None
    try:
        return cache.get(CATALOGUE_CACHE_KEY)
    except Exception as exc:  # redis raises many types; the catalogue comes from the database
        redis_breaker.failed(exc, fallback="the catalogue is read from the database")
        return None


def catalogue_document() -> tuple[dict, str]:
    """The products body (without partnerId) and its ETag, cached until the catalogue changes (read
    from the database while the cache is unreachable)."""
    cached = _catalogue_cached()
    if cached is not None:
        return cached["body"], cached["etag"]
    products = list(published_products())
    stamps = [p.updated_at for p in products] + [plan.updated_at for p in products for plan in p.active_plans]
    body = {
        "currency": settings.CURRENCY,
        "updatedAt": iso_utc(max(stamps)) if stamps else None,
        "products": [
            {
                "productId": p.item_id,
                "sku": p.sku,
                "name": p.name,
                "description": p.description,
                "plans": [{"tenure": plan.tenure, "price": f"{plan.price:.2f}"} for plan in p.active_plans],
            }
            for p in products
        ],
    }
    etag = '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32] + '"'
    if redis_breaker.available():
        try:
            cache.set(CATALOGUE_CACHE_KEY, {"body": body, "etag": etag}, CATALOGUE_CACHE_SECONDS)
        except Exception as exc:
            redis_breaker.failed(exc, fallback="the catalogue is read from the database")
    return body, etag


def catalogue_updated_at():
    return Product.objects.aggregate(at=Max("updated_at"))["at"]
