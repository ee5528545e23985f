"""URLs: the partner API under /t2mobile/ (paths take an optional trailing slash), its OpenAPI
schema and docs, and the Django admin at /admin/.
"""

from django.contrib import admin
from django.urls import path, re_path

from catalogue.api import ProductsView
from core import errors
from core.openapi import DocsView, SchemaView
from orders import api
from t2mobile_portal.health import HealthLiveView, HealthView
from t2mobile_portal.metrics import metrics_view
from webhooks import api as webhooks_api

handler404 = "core.errors.json_not_found"
handler500 = "core.errors.json_server_error"

urlpatterns = [
    re_path(r"^t2mobile/products/?$", ProductsView.as_view(), name="products"),
    re_path(r"^t2mobile/fulfilment/?$", api.FulfilmentView.as_view(), name="fulfilment"),
    re_path(r"^t2mobile/orders/?$", api.OrderListView.as_view(), name="order-list"),
    re_path(r"^t2mobile/orders/(?P<orderId>[^/]{1,200})/?$", api.OrderDetailView.as_view(), name="order-detail"),
    re_path(r"^t2mobile/events/?$", webhooks_api.EventListView.as_view(), name="event-list"),
    re_path(r"^t2mobile/events/recover/?$", webhooks_api.EventRecoverView.as_view(), name="event-recover"),
    re_path(r"^t2mobile/events/(?P<id>[^/]+)/resend/?$", webhooks_api.EventResendView.as_view(), name="event-resend"),
    re_path(r"^t2mobile/events/(?P<id>[^/]+)/?$", webhooks_api.EventDetailView.as_view(), name="event-detail"),
    re_path(r"^t2mobile/webhooks/test/?$", webhooks_api.WebhookTestView.as_view(), name="webhook-test"),
    re_path(r"^t2mobile/health/live/?$", HealthLiveView.as_view(), name="health-live"),
    re_path(r"^t2mobile/health/?$", HealthView.as_view(), name="health"),
    path("t2mobile/schema/", SchemaView.as_view(), name="schema"),
    path("t2mobile/docs/", DocsView.as_view(url_name="schema"), name="docs"),
    re_path(r"^t2mobile/", errors.api_not_found),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
]
