"""Writes of the catalogue: the sync from Zoho, and the edits staff make in the admin.

``catalogue_sync`` pages through every Zoho item first and then applies the changes in one
transaction, so a failure halfway through the paging changes nothing. The publishing and pricing
rules (``shared/spec/zoho.md``): a newly seen active item is published with ``DEFAULT_TENURES``,
each priced ``rate × months``; items that turn inactive or vanish are unpublished, never deleted;
whatever staff set (``Product.published_set_by_staff``, ``ProductPlan.set_by_staff``, plans they
removed) is never overwritten.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalogue.models import CatalogueSync, Product, ProductPlan, Tenure
from catalogue.selectors import catalogue_invalidate
from core.redis_roles import limits
from integrations.zoho.client import ZohoClient, zoho_client, zoho_day_zone_refresh
from integrations.zoho.errors import ZohoError
from integrations.zoho.values import Item

logger = logging.getLogger(__name__)

CATALOGUE_SYNC_LOCK_KEY = "zoho:catalogue_sync_lock"
CATALOGUE_SYNC_LOCK_SECONDS = 600


class CatalogueSyncBusy(Exception):
    """Another process is syncing the catalogue right now."""


def _default_tenures() -> list[str]:
    return [tenure for tenure in settings.DEFAULT_TENURES if tenure in Tenure.values]


def _plan_price(rate: Decimal, tenure: str) -> Decimal:
    return (rate * Tenure.months_of(tenure)).quantize(Decimal("0.01"))


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unpublished: int = 0


def _product_upsert(item: Item, counts: _Counts) -> bool:
    """Apply one Zoho item; True when anything the catalogue shows changed."""
    active = item.status == Product.ZohoStatus.ACTIVE
    product = Product.objects.select_for_update().filter(item_id=item.item_id).first()
    if product is None:
        product = Product.objects.create(
            item_id=item.item_id,
            name=item.name[:255],
            sku=item.sku[:100],
            description=item.description,
            rate=item.rate,
            unit=(item.unit or "")[:50],
            zoho_status=Product.ZohoStatus.ACTIVE if active else Product.ZohoStatus.INACTIVE,
            is_published=active,
        )
        if active:
            ProductPlan.objects.bulk_create(
                ProductPlan(product=product, tenure=tenure, price=_plan_price(item.rate, tenure))
                for tenure in _default_tenures()
            )
        counts.created += 1
        return True

    changed_fields = []
    new_values = {
        "name": item.name[:255],
        "sku": item.sku[:100],
        "description": item.description,
        "rate": item.rate,
        "zoho_status": Product.ZohoStatus.ACTIVE if active else Product.ZohoStatus.INACTIVE,
    }
    if item.unit is not None:  # a list row without a unit (as Zoho documents it) keeps the one we have
        new_values["unit"] = item.unit[:50]
    for name, value in new_values.items():
        if getattr(product, name) != value:
            setattr(product, name, value)
            changed_fields.append(name)
    if not product.published_set_by_staff:
        if not active and product.is_published:
            product.is_published = False
            changed_fields.append("is_published")
            counts.unpublished += 1
        elif active and not product.is_published and "zoho_status" in changed_fields:
            # Re-activated in Zoho after a sync had unpublished it: sell it again.
            product.is_published = True
            changed_fields.append("is_published")
    plans_changed = False
    if "rate" in changed_fields:
        for plan in product.plans.filter(set_by_staff=False):
            price = _plan_price(item.rate, plan.tenure)
            if plan.price != price:
                plan.price = price
                plan.save(update_fields=["price", "updated_at"])
                plans_changed = True
    if changed_fields:
        product.save(update_fields=[*changed_fields, "updated_at"])
        counts.updated += 1
    return bool(changed_fields) or plans_changed


def catalogue_sync(*, client: ZohoClient | None = None) -> CatalogueSync:
    """Refresh the local catalogue from Zoho; the returned row says what changed or why it failed."""
    owner = uuid.uuid4().hex
    if not limits.add(CATALOGUE_SYNC_LOCK_KEY, owner, timeout=CATALOGUE_SYNC_LOCK_SECONDS):
        raise CatalogueSyncBusy("a catalogue sync is already running")
    try:
        return _catalogue_sync(client=client or zoho_client())
    finally:
        if limits.get(CATALOGUE_SYNC_LOCK_KEY) == owner:
            limits.delete(CATALOGUE_SYNC_LOCK_KEY)


def _catalogue_sync(*, client: ZohoClient) -> CatalogueSync:
    started = timezone.now()
    run = CatalogueSync.objects.create(started_at=started)
    try:
        items = list(client.items())
        zoho_day_zone_refresh(client)  # once a day: the organisation's day for the call budget
        return _catalogue_apply(run=run, items=items, started=started)
    except Exception as exc:
        # Whatever broke (Zoho, a bad item, the database), the run never stays RUNNING.
        error = exc.describe() if isinstance(exc, ZohoError) else f"{type(exc).__name__}: {str(exc)[:300]}"
        CatalogueSync.objects.filter(pk=run.pk).update(
            status=CatalogueSync.Status.FAILED, error=error, finished_at=timezone.now()
        )
        logger.warning("catalogue sync failed: %s", error)
        raise


def _catalogue_apply(*, run: CatalogueSync, items: list, started) -> CatalogueSync:
    counts = _Counts()
    changed = False
    with transaction.atomic():
        seen = set()
        for item in items:
            seen.add(item.item_id)
            changed |= _product_upsert(item, counts)
        # ``update()`` leaves ``updated_at`` alone, so a sync that changes nothing keeps the ETag.
        Product.objects.filter(item_id__in=seen).update(last_synced_at=started)
        vanished = (
            Product.objects.select_for_update()
            .exclude(item_id__in=seen)
            .exclude(zoho_status=Product.ZohoStatus.INACTIVE, is_published=False)
        )
        for product in vanished:
            fields = []
            if product.zoho_status != Product.ZohoStatus.INACTIVE:
                product.zoho_status = Product.ZohoStatus.INACTIVE
                fields.append("zoho_status")
            if product.is_published and not product.published_set_by_staff:
                product.is_published = False
                fields.append("is_published")
                counts.unpublished += 1
            if fields:
                product.save(update_fields=[*fields, "updated_at"])
                changed = True
        run.status, run.finished_at, run.items_seen = CatalogueSync.Status.DONE, timezone.now(), len(items)
        run.created, run.updated, run.unpublished = counts.created, counts.updated, counts.unpublished
        run.save()
        if changed:
            transaction.on_commit(catalogue_invalidate)
    logger.info(
        "catalogue synced",
        extra={
            "items_seen": len(items),
            "items_created": counts.created,
            "items_updated": counts.updated,
            "items_unpublished": counts.unpublished,
        },
    )
    return run


# --- Catalogue edits by staff (the admin) ---------------------------------------------------------


def product_save_by_staff(*, product, changed_fields) -> None:
    """Save a staff edit of a product; a published flag staff chose is never overridden by a sync."""
    if "is_published" in changed_fields:
        product.published_set_by_staff = True
    product.save()
    transaction.on_commit(catalogue_invalidate)


def product_plan_save_by_staff(*, plan) -> None:
    """Save a staff edit of a tenure's price or availability; a sync never overwrites it."""
    plan.set_by_staff = True
    plan.save()
    transaction.on_commit(catalogue_invalidate)


def catalogue_sync_request() -> None:
    """Queue ``integrations.sync_zoho_catalogue`` now (after the caller's commit)."""
    from catalogue.tasks import sync_zoho_catalogue  # noqa: PLC0415 (the tasks module imports this one: Celery's side)

    transaction.on_commit(lambda: sync_zoho_catalogue.delay())
