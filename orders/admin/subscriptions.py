"""The back-office page of subscriptions: what a customer holds, its status and expiry, the order
that opened it and every order of it. Read-only: a subscription changes only through provisioning
(``orders/transitions.py``) and the nightly expiry (``orders/subscriptions.py``)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.html import format_html_join

from catalogue.models import Product
from core.admin_display import ReadOnlyAdminMixin, admin_link
from core.admin_pii import PiiGuardedAdmin
from orders.models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, PiiGuardedAdmin, admin.ModelAdmin):
    list_display = ("activation_reference", "customer_id", "product", "status", "expires_at")
    list_filter = ("status",)
    search_fields = ("=activation_reference", "=customer_id")
    search_help_text = "Exact activation reference or customerId."
    list_select_related = ("partner",)
    list_per_page = 50
    ordering = ("-pk",)
    show_full_result_count = False
    fields = (
        ("activation_reference", "status"),
        ("partner", "customer_id"),
        "product",
        ("starts_at", "expires_at"),
        "origin",
        "orders_of_it",
        ("created_at", "updated_at"),
    )
    readonly_fields = (
        "activation_reference",
        "status",
        "partner",
        "customer_id",
        "product",
        "starts_at",
        "expires_at",
        "origin",
        "orders_of_it",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request):
        product_name = Product.objects.filter(item_id=OuterRef("product_id")).values("name")[:1]
        return super().get_queryset(request).annotate(product_name=Subquery(product_name))

    @admin.display(description="product", ordering="product_name")
    def product(self, subscription):
        name = getattr(subscription, "product_name", None)
        return f"{name} ({subscription.product_id})" if name else subscription.product_id

    @admin.display(description="opened by")
    def origin(self, subscription):
        return admin_link(subscription.origin_order, subscription.origin_order.order_id)

    @admin.display(description="orders (each with the period it paid for)")
    def orders_of_it(self, subscription):
        orders = subscription.orders.select_related("fulfilment").order_by("pk")
        return format_html_join(
            "",
            "<div>{} {} {}</div>",
            ((admin_link(order, order.order_id), order.type, _period(order)) for order in orders),
        )


def _period(order) -> str:
    fulfilment = getattr(order, "fulfilment", None)
    if fulfilment is None or fulfilment.expires_at is None:
        return ""
    starts = f"{timezone.localtime(fulfilment.starts_at):%Y-%m-%d}" if fulfilment.starts_at else "?"
    return f"{starts} → {timezone.localtime(fulfilment.expires_at):%Y-%m-%d} ({fulfilment.status})"
