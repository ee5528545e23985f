"""Staff alerts (webhooks.md, "Endpoint health and alerts"): what is on fire, by mail and on the overview.

``active_alerts()`` computes the conditions staff must hear about, each from one cheap query or cache
read: a partner's webhook endpoint disabled, events dead-lettered in the last hour, Zoho refusing our
credentials for over 15 minutes, Zoho's daily budget over 80 %, orders PROCESSING for over an hour,
orders whose Zoho sales order is void.
Each ``Alert`` has a stable ``key`` per condition. The admin overview shows them as a banner
(``admin_site.py``); ``staff_alerts_send()`` (the every-minute task ``alerts.send_staff_alerts``) mails
each one to ``ADMINS`` at most once an hour per key, throttled by an atomic ``cache.add`` shared by
every process, so that a condition that stays, or clears and comes back, is mailed once an hour and a
cache outage sends nothing at all (never a storm). Bodies name counts, ids, times and what to do, never
a secret, a key, a webhook URL or a customer's contact details.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.db.models import Count, Exists, OuterRef
from django.urls import reverse
from django.utils import timezone

from core.admin_display import changelist_url
from core.redis_roles import limits
from integrations.zoho.auth import auth_failing_since
from integrations.zoho.budget import zoho_daily_usage
from orders.models import Order
from orders.selectors import orders_on_void_sales_orders
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog

logger = logging.getLogger(__name__)

#: A key is mailed at most once in this many seconds, whether the condition stays or comes back.
MAIL_THROTTLE_SECONDS = 3600
#: Dead letters are reported when their last attempt is this recent.
DEAD_LETTER_WINDOW = timedelta(hours=1)
#: Zoho refusing our credentials becomes an alert after this long (shorter refusals heal themselves).
ZOHO_CREDENTIALS_AFTER = timedelta(minutes=15)
#: Share of ZOHO_DAILY_LIMIT used today from which the budget is an alert.
ZOHO_BUDGET_SHARE = 0.8
#: An order PROCESSING (created) longer than this is an alert.
ORDERS_STUCK_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Alert:
    key: str  # stable per condition: the throttle's key
    subject: str  # one line: the mail's subject and the banner's text
    body: str  # the mail: counts, ids, times, what to do and where
    url: str  # the admin page to act on (a path)


def _when(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"


def _endpoints_disabled() -> list[Alert]:
    states = (
        WebhookEndpointState.objects.filter(disabled_at__isnull=False).select_related("partner").order_by("disabled_at")
    )
    alerts = []
    for state in states:
        partner = state.partner
        url = reverse("admin:partners_partner_change", args=[partner.pk])
        reason = state.get_disabled_reason_display()  # the raw value for a reason this code does not know
        alerts.append(
            Alert(
                key=f"endpoint-disabled:{partner.partner_id}",
                subject=f"Webhook endpoint of {partner.partner_id} disabled",
                body=(
                    f"The webhook endpoint of partner {partner.partner_id} has been disabled since "
                    f"{_when(state.disabled_at)}" + (f" ({reason})" if reason else "") + ".\n"
                    "Its events wait (nothing is dropped) and go out, in order, once the endpoint is enabled again.\n\n"
                    "What to do: ask the partner to fix its endpoint, then enable it in the admin: "
                    f"{url}"
                ),
                url=url,
            )
        )
    return alerts


def _dead_letters(now: datetime) -> list[Alert]:
    recent_attempt = WebhookAttempt.objects.filter(log=OuterRef("pk"), attempted_at__gte=now - DEAD_LETTER_WINDOW)
    failed = WebhookLog.objects.filter(status=WebhookLog.Status.FAILED).filter(Exists(recent_attempt))
    per_partner = failed.order_by().values_list("partner__partner_id").annotate(n=Count("pk"))
    by_partner = dict(per_partner.values_list("partner__partner_id", "n"))
    total = sum(by_partner.values())
    if not total:
        return []
    url = changelist_url("webhooks.webhooklog", status__exact=WebhookLog.Status.FAILED)
    partners = ", ".join(f"{partner_id}: {n}" for partner_id, n in sorted(by_partner.items()))
    return [
        Alert(
            key="dead-letters",
            subject=f"{total} webhook event(s) dead-lettered in the last hour",
            body=(
                f"{total} webhook event(s) used up their retries (or were refused with 410) and are FAILED, "
                f"their last attempt within the last hour (by partner: {partners}).\n\n"
                "What to do: see why in their attempts, and once the endpoint answers, resend them "
                f"from the admin (same event ids): {url}"
            ),
            url=url,
        )
    ]


def _zoho_credentials(now: datetime) -> list[Alert]:
    try:
        since = auth_failing_since()
    except Exception:  # the cache is down: no one can say; the overview shows the cache as unknown
        logger.warning("alerts: Zoho credential state unreadable (cache unreachable)")
        return []
    if since is None:
        return []
    since_at = datetime.fromtimestamp(since, tz=UTC)
    if now - since_at <= ZOHO_CREDENTIALS_AFTER:
        return []
    url = changelist_url("orders.order", status__exact=Order.Status.PROCESSING)
    minutes = int((now - since_at).total_seconds() // 60)
    return [
        Alert(
            key="zoho-credentials",
            subject="Zoho refuses our credentials",
            body=(
                f"Zoho has refused our credentials since {_when(since_at)} ({minutes} minutes), even after a "
                "token refresh. Orders wait in PROCESSING and the catalogue sync fails until it is fixed.\n\n"
                "What to do: check ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN in the environment "
                "(a revoked refresh token, or credentials of another data centre than ZOHO_ACCOUNTS_URL), "
                f"fix them and restart; the orders waiting: {url}"
            ),
            url=url,
        )
    ]


def _zoho_budget() -> list[Alert]:
    try:
        usage = zoho_daily_usage()
    except Exception:
        logger.warning("alerts: Zoho budget unreadable")
        return []
    if not usage["limit"] or usage["share"] < ZOHO_BUDGET_SHARE:
        return []
    url = changelist_url("orders.order", status__exact=Order.Status.PROCESSING)
    share = int(usage["share"] * 100)
    return [
        Alert(
            key="zoho-budget",
            subject=f"Zoho API budget at {share} % today",
            body=(
                f"{usage['calls']} of {usage['limit']} Zoho API calls (ZOHO_DAILY_LIMIT) are used today ({share} %). "
                "At the limit no Zoho call goes out until the next day (Africa/Lagos): orders wait in PROCESSING.\n\n"
                "What to do: look for what is calling Zoho so often (a loop of retries, a catalogue sync), or "
                f"raise the plan's limit and ZOHO_DAILY_LIMIT with it; the orders waiting: {url}"
            ),
            url=url,
        )
    ]


def _orders_stuck(now: datetime) -> list[Alert]:
    cutoff = (now - ORDERS_STUCK_AFTER).replace(microsecond=0)
    stuck = Order.objects.filter(status=Order.Status.PROCESSING, created_at__lt=cutoff)
    oldest = stuck.order_by("created_at").values_list("order_id", "created_at").first()
    if oldest is None:
        return []
    oldest_id, oldest_at = oldest
    count = stuck.count()
    since = str(timezone.localtime(cutoff))
    url = changelist_url("orders.order", status__exact=Order.Status.PROCESSING, created_at__lt=since)
    return [
        Alert(
            key="orders-stuck",
            subject=f"{count} order(s) PROCESSING for over an hour",
            body=(
                f"{count} order(s) have been PROCESSING for over an hour; the oldest, {oldest_id}, since "
                f"{_when(oldest_at)}.\n\n"
                "What to do: open them in the admin and read the fulfilment's last error (a Zoho outage, refused "
                f"credentials, the budget); retry or fail them from there: {url}"
            ),
            url=url,
        )
    ]


def _sales_orders_void() -> list[Alert]:
    void = orders_on_void_sales_orders()
    ids = list(void.order_by("pk").values_list("order_id", flat=True)[:10])
    if not ids:
        return []
    count = void.count()
    url = changelist_url("orders.order", status__exact=Order.Status.PROCESSING)
    return [
        Alert(
            key="sales-orders-void",
            subject=f"{count} order(s) wait on a Zoho sales order that is void",
            body=(
                f"{count} PROCESSING order(s) found their Zoho sales order void although the order is not "
                f"cancelled ({', '.join(ids)}{', …' if count > len(ids) else ''}). They are neither fulfilled nor "
                "failed: they wait, and are checked again every hour.\n\n"
                "What to do: find out who voided it in Zoho; un-void it there if the sale stands (the order is "
                f"then fulfilled), or mark the order failed in the admin: {url}"
            ),
            url=url,
        )
    ]


def active_alerts(now: datetime | None = None) -> list[Alert]:
    """The conditions staff must hear about now, each with its stable key (see the module docstring)."""
    now = now or timezone.now()
    return [
        *_endpoints_disabled(),
        *_dead_letters(now),
        *_zoho_credentials(now),
        *_zoho_budget(),
        *_orders_stuck(now),
        *_sales_orders_void(),
    ]


def staff_alerts_send(now: datetime | None = None) -> dict:
    """Mail each active alert to ADMINS unless its key was mailed within the hour; what was done.

    The throttle is ``cache.add`` (atomic across every process and machine): only the caller that adds
    the key mails. The key stays for the hour even if the condition clears, so a condition that comes
    back within the hour is not mailed again. If the cache is unreachable nothing is mailed (the banner
    still shows): an outage must never turn into a mail every minute. A mail that fails to send keeps
    its key too (at most once an hour, rather than a retry each minute against a flaky server).
    """
    alerts = active_alerts(now)
    result = {"active": [alert.key for alert in alerts], "mailed": [], "alreadyMailed": []}
    if not alerts:
        return result
    if not settings.ADMINS:
        logger.warning("alerts: %d active but ADMINS is empty, nothing mailed: %s", len(alerts), result["active"])
        return result
    for alert in alerts:
        try:
            first = limits.add(f"alerts:mailed:{alert.key}", 1, timeout=MAIL_THROTTLE_SECONDS)
        except Exception:
            logger.warning("alerts: the cache is unreachable, no alert mailed (the admin overview shows them)")
            result["cacheUnreachable"] = True
            return result
        if not first:
            result["alreadyMailed"].append(alert.key)
            continue
        try:
            mail_admins(alert.subject, alert.body, fail_silently=False)
        except Exception:
            logger.exception("alerts: mail of %s not sent; next try in an hour", alert.key)
            continue
        logger.info("alerts: mailed %s", alert.key)
        result["mailed"].append(alert.key)
    return result
