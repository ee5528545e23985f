"""Model factories (factory_boy) for the tests: one place that knows how a valid row of each table
looks, so a test names only what it is about (``OrderFactory(status=Order.Status.FAILED)``).

Every factory writes through the ORM to the real test database. Defaults are a T2Mobile customer
ordering Zoho Mail Lite for 12 months; an order comes with its fulfilment in the matching state
unless ``fulfilment=None`` is passed. A subscription comes with the NEW order that opened it and that
order's fulfilment; ``renewal_create`` adds a provisioned renewal the way provisioning writes one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import factory
from dateutil.relativedelta import relativedelta
from django.utils import timezone
from factory.django import DjangoModelFactory

from catalogue.models import CatalogueSync, Product, ProductPlan, Tenure
from orders.models import Fulfilment, IdempotencyRecord, Order, Subscription, ZohoContact
from partners.models import Partner, WebhookSecret
from partners.services import secret_generate
from tests.zoho_fixtures import MAIL_LITE
from webhooks.models import WebhookAttempt, WebhookLog

DEFAULT_ITEM_ID = MAIL_LITE["item_id"]

#: The fulfilment state that goes with an order state.
FULFILMENT_STATUS_OF_ORDER = {
    Order.Status.FULFILLED: Fulfilment.Status.ACTIVE,
    Order.Status.FAILED: Fulfilment.Status.FAILED,
}


class PartnerFactory(DjangoModelFactory):
    class Meta:
        model = Partner
        django_get_or_create = ("partner_id",)

    partner_id = factory.Sequence(lambda n: f"PARTNER{n:03d}")
    name = factory.LazyAttribute(lambda partner: f"Partner {partner.partner_id}")


class ProductFactory(DjangoModelFactory):
    """A published Zoho item. ``plans``: tenures (priced ``rate × months``) or ``{tenure: price}``."""

    class Meta:
        model = Product
        django_get_or_create = ("item_id",)

    item_id = factory.Sequence(lambda n: f"48150000000{n:05d}")
    name = factory.Sequence(lambda n: f"Zoho product {n}")
    sku = factory.Sequence(lambda n: f"ZP-{n}")
    description = ""
    rate = Decimal("1500.00")
    is_published = True

    @factory.post_generation
    def plans(product, create, tenures, **kwargs):
        prices = tenures if isinstance(tenures, dict) else {}
        for tenure in tenures or ():
            price = prices.get(tenure, product.rate * Tenure.months_of(tenure))
            ProductPlanFactory(product=product, tenure=tenure, price=Decimal(price))


class ProductPlanFactory(DjangoModelFactory):
    class Meta:
        model = ProductPlan
        django_get_or_create = ("product", "tenure")

    product = factory.SubFactory(ProductFactory)
    tenure = Tenure.TWELVE_MONTHS
    price = Decimal("15000.00")


class FulfilmentFactory(DjangoModelFactory):
    class Meta:
        model = Fulfilment

    order = factory.SubFactory("tests.factories.OrderFactory", fulfilment=None)
    status = factory.LazyAttribute(lambda f: FULFILMENT_STATUS_OF_ORDER.get(f.order.status, Fulfilment.Status.PENDING))
    activation_reference = factory.LazyAttribute(lambda f: f.order.activation_reference)


class OrderFactory(DjangoModelFactory):
    class Meta:
        model = Order

    partner = factory.SubFactory(PartnerFactory)
    order_id = factory.Sequence(lambda n: f"T2M9{n:05d}")
    customer_id = factory.Sequence(lambda n: f"CUST-{n:04d}")
    customer_name = "Ada Obi"
    customer_email = factory.Sequence(lambda n: f"ada.obi{n}@example.com")
    customer_phone = "+2348031234567"
    product_id = DEFAULT_ITEM_ID
    tenure = Tenure.TWELVE_MONTHS
    unit_price = Decimal("15000.00")
    idempotency_key = factory.LazyAttribute(lambda order: f"key-{order.order_id}")
    status = Order.Status.PROCESSING
    fulfilment = factory.RelatedFactory(FulfilmentFactory, factory_related_name="order")


#: The fulfilment state that goes with a subscription state, for the order that opened it.
FULFILMENT_STATUS_OF_SUBSCRIPTION = {
    Subscription.Status.ACTIVE: Fulfilment.Status.ACTIVE,
    Subscription.Status.EXPIRED: Fulfilment.Status.EXPIRED,
}


class SubscriptionFactory(DjangoModelFactory):
    """A subscription for a month, as a NEW order's provisioning opens it: the FULFILLED origin order
    (``origin_order__metadata=…`` and the like reach it) points at it, and that order's fulfilment
    has the subscription's period and matching status. Pass ``expires_at``."""

    class Meta:
        model = Subscription

    partner = factory.SubFactory(PartnerFactory)
    origin_order = factory.SubFactory(
        OrderFactory,
        partner=factory.SelfAttribute("..partner"),
        order_id=factory.Sequence(lambda n: f"T2M-SUB-{n}"),
        customer_id=factory.Sequence(lambda n: f"CUST-SUB-{n}"),
        customer_email="ada@example.com",
        tenure=Tenure.ONE_MONTH,
        unit_price=Decimal("1500.00"),
        metadata=factory.LazyFunction(lambda: {"campaign": "DEC-PROMO"}),
        status=Order.Status.FULFILLED,
        activation_reference=factory.Sequence(lambda n: f"LIC-{n:06d}"),
        fulfilment=None,
    )
    customer_id = factory.SelfAttribute("origin_order.customer_id")
    product_id = factory.SelfAttribute("origin_order.product_id")
    activation_reference = factory.SelfAttribute("origin_order.activation_reference")
    status = Subscription.Status.ACTIVE
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    starts_at = factory.LazyAttribute(lambda s: timezone.localtime(s.expires_at) - relativedelta(months=1))

    @factory.post_generation
    def origin_fulfilment(subscription, create, extracted, **kwargs):
        order = subscription.origin_order
        FulfilmentFactory(
            order=order,
            status=FULFILMENT_STATUS_OF_SUBSCRIPTION[subscription.status],
            activation_reference=subscription.activation_reference,
            starts_at=subscription.starts_at,
            expires_at=subscription.expires_at,
        )
        Order.objects.filter(pk=order.pk).update(subscription=subscription)
        order.subscription = subscription


def renewal_create(
    *,
    subscription: Subscription,
    expires_at: datetime,
    renewal_of: Order | None = None,
    starts_at: datetime | None = None,
    **order_fields,
) -> Order:
    """A FULFILLED RENEWAL of ``renewal_of`` (default: the subscription's origin order) as
    provisioning leaves it: the subscription extended to ``expires_at`` and ACTIVE, and the
    renewal's ACTIVE fulfilment holding the period it paid for, from ``starts_at`` (default: the
    subscription's previous expiry) to ``expires_at``."""
    renewal_of = renewal_of or subscription.origin_order
    starts_at = starts_at or subscription.expires_at
    order = OrderFactory(
        partner=subscription.partner,
        type=Order.Type.RENEWAL,
        renewal_of=renewal_of,
        customer_id=subscription.customer_id,
        product_id=subscription.product_id,
        tenure=Tenure.ONE_MONTH,
        unit_price=Decimal("1500.00"),
        status=Order.Status.FULFILLED,
        activation_reference=subscription.activation_reference,
        subscription=subscription,
        fulfilment__starts_at=starts_at,
        fulfilment__expires_at=expires_at,
        **order_fields,
    )
    subscription.expires_at, subscription.status = expires_at, Subscription.Status.ACTIVE
    subscription.save(update_fields=["expires_at", "status", "updated_at"])
    return order


class WebhookLogFactory(DjangoModelFactory):
    """An event as the admin shows it; ``attempts`` is a list of HTTP status codes already tried."""

    class Meta:
        model = WebhookLog

    order = factory.SubFactory(OrderFactory)
    partner = factory.LazyAttribute(lambda log: log.order.partner if log.order else PartnerFactory())
    event_id = factory.Sequence(lambda n: f"evt_{n:032d}")
    event_type = WebhookLog.EventType.ORDER_FULFILLED
    status = WebhookLog.Status.PENDING
    payload = factory.LazyAttribute(
        lambda log: {
            "id": log.event_id,
            "type": log.event_type,
            "partnerId": log.partner.partner_id,
            "data": {"orderId": log.order.order_id if log.order else None},
        }
    )
    body = "{}"

    @factory.post_generation
    def attempts(log, create, codes, **kwargs):
        for code in codes or ():
            WebhookAttempt.objects.create(log=log, duration_ms=120, status_code=code, response_excerpt="upstream down")
        if codes:
            WebhookLog.objects.filter(pk=log.pk).update(retries=len(codes))
            log.retries = len(codes)


class WebhookSecretFactory(DjangoModelFactory):
    class Meta:
        model = WebhookSecret

    partner = factory.SubFactory(PartnerFactory)
    secret = factory.LazyFunction(secret_generate)


class IdempotencyRecordFactory(DjangoModelFactory):
    """A DONE record of an accepted request, kept for ``IDEMPOTENCY_KEY_TTL_HOURS`` from now."""

    class Meta:
        model = IdempotencyRecord

    partner = factory.SubFactory(PartnerFactory)
    key = factory.Sequence(lambda n: f"key-{n}")
    fingerprint = "f" * 64
    status = IdempotencyRecord.Status.DONE
    response_status = 202
    response_body = factory.LazyFunction(lambda: {"success": True})
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=72))


class CatalogueSyncFactory(DjangoModelFactory):
    class Meta:
        model = CatalogueSync

    started_at = factory.LazyFunction(timezone.now)
    status = CatalogueSync.Status.DONE


class ZohoContactFactory(DjangoModelFactory):
    class Meta:
        model = ZohoContact

    partner = factory.SubFactory(PartnerFactory)
    customer_id = factory.Sequence(lambda n: f"CUST-{n:04d}")
    contact_id = factory.Sequence(lambda n: f"48150000000{n:05d}")
