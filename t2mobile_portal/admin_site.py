"""The admin site of the back-office: an overview on the index page, and a rate-limited login.

The overview answers "is anything on fire" at a glance: a banner of the active staff alerts
(``t2mobile_portal/alerts.py``, the ones mailed to ADMINS), today's orders by status, stuck orders,
webhook events waiting or failed, the Zoho API budget used today and the last catalogue sync. Each
figure links to the change list filtered to exactly those rows (``templates/admin/index.html``).
Below the figures, a picture of the last 14 days (``t2mobile_portal/admin_chart.py``).

A NUL byte in an admin URL's query or path, or a bulk action's row id that is no id, is answered as
Django answers any filter or id it cannot use (``refuse_unusable_input``): PostgreSQL cannot hold
NUL in a text value, and an integer key cannot hold ``abc``, so the query would otherwise fail and
answer 500.

Login attempts are limited per client IP (``ADMIN_LOGIN_RATE_LIMIT``, default 10 a minute): the
next attempt gets a 429 page saying to wait, whatever the password. If Redis (which holds the
counts) is down, the login works without the limit. After a login, a ``next`` that is missing or
points off this site leads to the overview, never to Django's ``LOGIN_REDIRECT_URL`` default
(``/accounts/profile/``, which is no page here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ERROR_FLAG
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

from catalogue.models import CatalogueSync
from catalogue.selectors import last_catalogue_sync
from core.admin_display import changelist_url
from integrations.zoho.auth import auth_failing_since
from integrations.zoho.budget import zoho_daily_usage, zoho_paused
from orders.models import Order
from orders.selectors import orders_needing_attention
from t2mobile_portal.admin_chart import activity_chart
from t2mobile_portal.admin_schedule import schedule_admin_class
from t2mobile_portal.alerts import Alert, active_alerts
from webhooks.models import WebhookLog

logger = logging.getLogger(__name__)

LOGIN_RATE_LIMIT_GROUP = "admin-login"


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    url: str = ""
    alert: bool = False


def overview_figures(now=None) -> dict[str, list[Figure]]:
    """The overview's figures, grouped by section; every count links to its filtered change list."""
    now = timezone.localtime(now or timezone.now())
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + timedelta(days=1)
    # The same parameters as the "Created: Today" link of the change list's date filter.
    today_params = {"created_at__gte": str(today), "created_at__lt": str(tomorrow)}

    # An order created today was updated today too; saying so lets each count use the
    # (status, updated_at) index instead of reading the whole table.
    created_today = Order.objects.filter(updated_at__gte=today, created_at__gte=today, created_at__lt=tomorrow)
    by_status = {value: created_today.filter(status=value).count() for value in Order.Status.values}
    orders = [
        Figure(
            label=value + (" (on hold)" if value == Order.Status.PENDING else ""),
            value=str(by_status.get(value, 0)),
            url=changelist_url("orders.order", status__exact=value, **today_params),
            alert=value == Order.Status.FAILED and by_status.get(value, 0) > 0,
        )
        for value in Order.Status.values
    ]
    stuck = orders_needing_attention(now).count()
    attention = [
        Figure(
            "Stuck orders (PROCESSING over 15 min, or a FAILED webhook)",
            str(stuck),
            changelist_url("orders.order", attention="stuck"),
            alert=stuck > 0,
        ),
    ]
    webhook_counts = dict(
        WebhookLog.objects.filter(status__in=[WebhookLog.Status.PENDING, WebhookLog.Status.FAILED])
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    webhooks = [
        Figure(
            "Webhook events waiting",
            str(webhook_counts.get(WebhookLog.Status.PENDING, 0)),
            changelist_url("webhooks.webhooklog", status__exact=WebhookLog.Status.PENDING),
        ),
        Figure(
            "Webhook events failed",
            str(webhook_counts.get(WebhookLog.Status.FAILED, 0)),
            changelist_url("webhooks.webhooklog", status__exact=WebhookLog.Status.FAILED),
            alert=webhook_counts.get(WebhookLog.Status.FAILED, 0) > 0,
        ),
    ]

    zoho = [_zoho_budget_figure(), *_zoho_wait_figures()]
    last_sync = last_catalogue_sync()
    if last_sync is None:
        zoho.append(Figure("Last catalogue sync", "never", changelist_url("catalogue.cataloguesync"), alert=True))
    else:
        when = timezone.localtime(last_sync.started_at).strftime("%Y-%m-%d %H:%M %Z")
        zoho.append(
            Figure(
                "Last catalogue sync",
                f"{when} {last_sync.status}",
                changelist_url("catalogue.cataloguesync"),
                alert=last_sync.status == CatalogueSync.Status.FAILED,
            )
        )
    return {"Orders created today": orders, "Needs attention": attention, "Webhooks": webhooks, "Zoho": zoho}


def _zoho_budget_figure() -> Figure:
    usage = zoho_daily_usage()
    if usage["scope"] == "per process":  # no shared Redis: this process's own count says nothing
        return Figure("Zoho API calls today", "counted per process (no REDIS_URL): not shown here")
    share = int(usage["share"] * 100)
    return Figure("Zoho API calls today", f"{usage['calls']} of {usage['limit']} ({share} %)", alert=usage["warning"])


def _zoho_wait_figures() -> list[Figure]:
    """Why and until when Zoho calls are paused, and since when Zoho refuses our credentials."""
    figures = []
    try:
        pause = zoho_paused()
        since = auth_failing_since()
    except Exception:  # the cache is down: the overview still renders
        return [Figure("Zoho call budget", "unknown (cache unreachable)", alert=True)]
    if pause is not None:
        until = timezone.localtime() + timedelta(seconds=pause.seconds)
        figures.append(Figure(f"Zoho calls paused: {pause.reason}", f"until {until:%Y-%m-%d %H:%M:%S %Z}", alert=True))
    if since is not None:
        when = timezone.localtime(datetime.fromtimestamp(since, tz=UTC))
        figures.append(Figure("Zoho refuses our credentials", f"since {when:%Y-%m-%d %H:%M %Z}", alert=True))
    return figures


def staff_alerts_banner() -> list[Alert]:
    """The banner at the top of the overview: the alerts mailed to ADMINS (``t2mobile_portal/alerts.py``).

    Its cache reads already shrug off a Redis outage; anything else that goes wrong costs the banner,
    never the overview.
    """
    try:
        return active_alerts()
    except Exception:
        logger.exception("admin overview: staff alerts not computed")
        return []


NUL = "\x00"


def refuse_unusable_input(view):
    """``view`` that first answers what its query could not use the way Django answers a value it
    cannot use: a NUL byte in the path (an object id, an action name) with a 404; a NUL in the query
    string (a list filter, a search), or selected rows of a bulk action whose ids the primary key
    cannot hold (``abc`` for an integer), with the change list's ``?e=1`` redirect."""
    model_admin = getattr(view, "__self__", None)
    pk_field = model_admin.model._meta.pk if isinstance(model_admin, admin.ModelAdmin) else None

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if any(NUL in str(value) for value in (*args, *kwargs.values())):
            raise Http404("No such object.")
        if any(NUL in key or any(NUL in value for value in values) for key, values in request.GET.lists()):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        if pk_field is not None and request.method == "POST":
            try:
                for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                    if NUL in value:  # a text key takes it in Python, then PostgreSQL refuses it
                        raise ValidationError("NUL in a row id")
                    pk_field.to_python(value)
            except ValidationError:
                return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return view(request, *args, **kwargs)

    return guarded


class BackOfficeSite(admin.AdminSite):
    site_header = "IconTech ↔ T2Mobile back-office"
    site_title = "IconTech back-office"
    index_title = "Overview"
    site_url = None  # no public site to "view": / is the partner API's 404

    def admin_view(self, view, cacheable=False):
        # Every ModelAdmin URL (Django's, the beat's and our action buttons) is built through here.
        return super().admin_view(refuse_unusable_input(view), cacheable)

    def register(self, model_or_iterable, admin_class=None, **options):
        # django-celery-beat registers its own PeriodicTask admin; staff get it narrowed to the
        # schedule's timing (t2mobile_portal/admin_schedule.py).
        admin_class = schedule_admin_class(model_or_iterable, admin_class)
        return super().register(model_or_iterable, admin_class, **options)

    def index(self, request, extra_context=None):
        context = {
            "staff_alerts": staff_alerts_banner(),
            "overview": overview_figures(),
            "activity_chart": activity_chart(),
            **(extra_context or {}),
        }
        return super().index(request, extra_context=context)

    def login(self, request, extra_context=None):
        try:
            limited = is_ratelimited(
                request=request,
                group=LOGIN_RATE_LIMIT_GROUP,
                key="ip",
                rate=getattr(settings, "ADMIN_LOGIN_RATE_LIMIT", "10/m"),
                method="POST",
                increment=True,
            )
        except (RedisError, OSError):
            # The counts live in Redis. When it is down, staff must still be able to log in (that is
            # when ops need the admin most); passwords are still checked.
            logger.warning("admin login rate limit not applied: the cache is unreachable")
            limited = False
        if limited:
            context = {**self.each_context(request), "title": "Too many login attempts"}
            return TemplateResponse(request, "admin/login_rate_limited.html", context, status=429)
        self._login_next_made_safe(request)
        return super().login(request, extra_context=extra_context)

    def _login_next_made_safe(self, request) -> None:
        """Replace a ``next`` that Django's LoginView would refuse (empty, another host, another
        scheme) with the admin index, and give a POST without any ``next`` the index too: the
        LoginView falls back to ``LOGIN_REDIRECT_URL`` for both, and the back-office has no page
        there. The LoginView reads the POST's ``next`` first, then the query's."""
        index = reverse("admin:index", current_app=self.name)
        for name in ("GET", "POST"):
            params = getattr(request, name)
            value = params.get(REDIRECT_FIELD_NAME)
            if value is None and not (name == "POST" and request.method == "POST"):
                continue
            if value is None and REDIRECT_FIELD_NAME in request.GET:
                continue  # the query's (already made safe) applies
            if value is None or not self._login_next_is_safe(request, value):
                params = params.copy()
                params[REDIRECT_FIELD_NAME] = index
                setattr(request, name, params)

    @staticmethod
    def _login_next_is_safe(request, url: str) -> bool:
        # The same test as LoginView.get_redirect_url.
        return url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
