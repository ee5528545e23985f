"""The catalogue sync: Zoho items become products and plans under zoho.md's publishing rules."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
import responses
from django.core.cache import cache
from django.core.management import CommandError, call_command

import catalogue.services as services
from catalogue.models import CatalogueSync, Product, ProductPlan
from catalogue.selectors import last_catalogue_sync
from catalogue.services import catalogue_sync
from integrations.zoho.errors import ZohoTransientError
from tests.zoho_fixtures import ACCOUNTS_URL, API_BASE, LEGACY_BACKUP, MAIL_LITE, NORTON

pytestmark = pytest.mark.django_db


def stub():
    # The access token is cached between syncs, so the token stub may go unused.
    return responses.RequestsMock(assert_all_requests_are_fired=False)


def zoho_items(rsps, *pages):
    rsps.post(f"{ACCOUNTS_URL}/oauth/v2/token", json={"access_token": "1000.t", "expires_in": 3600})
    for number, items in enumerate(pages, start=1):
        rsps.get(
            f"{API_BASE}/items",
            json={
                "code": 0,
                "message": "success",
                "items": items,
                "page_context": {"page": number, "per_page": 200, "has_more_page": number < len(pages)},
            },
        )


def plans_of(item_id):
    return {p.tenure: p.price for p in ProductPlan.objects.filter(product__item_id=item_id, is_active=True)}


def test_new_active_item_is_published_with_default_tenures_priced_rate_times_months(zoho_settings):
    with stub() as rsps:
        zoho_items(rsps, [MAIL_LITE], [LEGACY_BACKUP])

        run = catalogue_sync()

    mail = Product.objects.get(item_id=MAIL_LITE["item_id"])
    assert mail.is_published and mail.name == MAIL_LITE["name"] and mail.last_synced_at is not None
    assert plans_of(MAIL_LITE["item_id"]) == {"1_MONTH": Decimal("1500.00"), "12_MONTHS": Decimal("18000.00")}
    old = Product.objects.get(item_id=LEGACY_BACKUP["item_id"])
    assert not old.is_published and plans_of(LEGACY_BACKUP["item_id"]) == {}
    assert (run.status, run.items_seen, run.created) == (CatalogueSync.Status.DONE, 2, 2)
    assert last_catalogue_sync() == run


def test_the_partner_catalogue_shows_a_synced_product_at_once(zoho_settings, api, django_capture_on_commit_callbacks):
    assert api.get("/t2mobile/products").json()["products"] == []  # cached while empty
    with stub() as rsps, django_capture_on_commit_callbacks(execute=True):
        zoho_items(rsps, [NORTON])
        catalogue_sync()

    products = api.get("/t2mobile/products").json()["products"]

    assert [p["productId"] for p in products] == [NORTON["item_id"]]
    assert {p["tenure"]: p["price"] for p in products[0]["plans"]} == {"1_MONTH": "2500.00", "12_MONTHS": "30000.00"}


def test_a_sync_never_overwrites_what_staff_set(zoho_settings):
    with stub() as rsps:
        zoho_items(rsps, [MAIL_LITE, NORTON])
        catalogue_sync()
    ProductPlan.objects.filter(product__item_id=MAIL_LITE["item_id"], tenure="12_MONTHS").update(
        price=Decimal("16000.00"), set_by_staff=True
    )
    ProductPlan.objects.filter(product__item_id=MAIL_LITE["item_id"], tenure="1_MONTH").delete()  # staff removed it
    Product.objects.filter(item_id=NORTON["item_id"]).update(is_published=False, published_set_by_staff=True)

    with stub() as rsps:
        zoho_items(rsps, [{**MAIL_LITE, "rate": 2000.0, "name": f"{MAIL_LITE['name']} 2"}, NORTON])
        catalogue_sync()

    mail = Product.objects.get(item_id=MAIL_LITE["item_id"])
    assert (mail.name, mail.rate) == (f"{MAIL_LITE['name']} 2", Decimal("2000.00"))
    assert plans_of(MAIL_LITE["item_id"]) == {"12_MONTHS": Decimal("16000.00")}
    assert not Product.objects.get(item_id=NORTON["item_id"]).is_published


def test_a_rate_change_reprices_plans_staff_did_not_set(zoho_settings):
    with stub() as rsps:
        zoho_items(rsps, [MAIL_LITE])
        catalogue_sync()

    with stub() as rsps:
        zoho_items(rsps, [{**MAIL_LITE, "rate": 1600.0}])
        catalogue_sync()

    assert plans_of(MAIL_LITE["item_id"]) == {"1_MONTH": Decimal("1600.00"), "12_MONTHS": Decimal("19200.00")}


def test_vanished_or_inactive_items_are_unpublished_never_deleted(zoho_settings):
    with stub() as rsps:
        zoho_items(rsps, [MAIL_LITE, NORTON])
        catalogue_sync()

    with stub() as rsps:
        zoho_items(rsps, [{**NORTON, "status": "inactive"}])
        run = catalogue_sync()

    mail, norton = Product.objects.get(item_id=MAIL_LITE["item_id"]), Product.objects.get(item_id=NORTON["item_id"])
    assert not mail.is_published and mail.zoho_status == "inactive"
    assert not norton.is_published and norton.zoho_status == "inactive"
    assert ProductPlan.objects.filter(product=mail).count() == 2  # kept for old orders
    assert run.unpublished == 2


def test_a_failure_while_paging_changes_nothing_and_is_recorded(zoho_settings):
    with stub() as rsps:
        rsps.post(f"{ACCOUNTS_URL}/oauth/v2/token", json={"access_token": "1000.t", "expires_in": 3600})
        rsps.get(
            f"{API_BASE}/items",
            json={
                "code": 0,
                "message": "success",
                "items": [MAIL_LITE],
                "page_context": {"page": 1, "has_more_page": True},
            },
        )
        rsps.get(f"{API_BASE}/items", status=500, json={"code": 1000, "message": "Internal error"})

        with pytest.raises(ZohoTransientError):
            catalogue_sync()

    assert not Product.objects.exists()
    failed = last_catalogue_sync()
    assert failed.status == CatalogueSync.Status.FAILED and "Internal error" in failed.error


def test_a_failure_while_applying_the_items_rolls_back_and_is_recorded(zoho_settings, monkeypatch):
    def broken_upsert(item, counts):
        raise ValueError(f"item {item.item_id} has no rate")

    monkeypatch.setattr(services, "_product_upsert", broken_upsert)
    with stub() as rsps:
        zoho_items(rsps, [MAIL_LITE])

        with pytest.raises(ValueError):
            catalogue_sync()

    assert not Product.objects.exists()
    failed = last_catalogue_sync()
    assert failed.status == CatalogueSync.Status.FAILED and failed.finished_at is not None
    assert f"ValueError: item {MAIL_LITE['item_id']} has no rate" == failed.error


def test_the_command_reports_what_changed_and_fails_loudly(zoho_settings):
    out = StringIO()
    with stub() as rsps:
        zoho_items(rsps, [MAIL_LITE, LEGACY_BACKUP])
        call_command("sync_zoho_catalogue", stdout=out)
    assert "2 items, 2 new" in out.getvalue()
    cache.clear()  # no token cached: the refresh is refused

    with stub() as rsps:
        rsps.post(f"{ACCOUNTS_URL}/oauth/v2/token", json={"error": "invalid_client"})
        with pytest.raises(CommandError, match="invalid_client"):
            call_command("sync_zoho_catalogue", stdout=StringIO())


def test_an_item_row_without_unit_as_zoho_documents_it_syncs_and_keeps_a_known_unit(zoho_settings):
    # The documented list row of GET /items has no ``unit``; a real organisation sends none.
    row = {key: value for key, value in MAIL_LITE.items() if key != "unit"}
    with stub() as rsps:
        zoho_items(rsps, [row])
        first = catalogue_sync()
    product = Product.objects.get(item_id=MAIL_LITE["item_id"])
    assert (first.status, product.unit, product.is_published) == (CatalogueSync.Status.DONE, "", True)

    Product.objects.filter(pk=product.pk).update(unit="user")  # known from an item's own answer
    with stub() as rsps:
        zoho_items(rsps, [{**row, "rate": 1600.0}])
        catalogue_sync()

    product.refresh_from_db()
    assert (product.unit, product.rate) == ("user", Decimal("1600.00"))
