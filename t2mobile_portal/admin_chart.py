"""The picture on the admin overview: orders per day by status, and webhook events delivered or failed
per day, over the last 14 days, drawn on the server as one inline SVG (no JavaScript, no CDN).

Two queries, each grouped by day in the database and limited to the 14 days: orders through the
``(status, updated_at)`` index (an order created in the window was updated in it too), events
through ``(status, created_at)``. Each bar carries a ``<title>`` (its day, series and count, shown
on hover and read by screen readers) and ``data-*`` attributes for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from orders.models import Order
from webhooks.models import WebhookLog

CHART_DAYS = 14
WIDTH = 640  # the overview's column; the SVG scales to its box
PANEL_HEIGHT = 130  # plot area of each panel
LEFT, RIGHT, TOP, GAP, BOTTOM = 44, 8, 52, 50, 40


@dataclass(frozen=True)
class Series:
    key: str  # the status as stored
    label: str
    colour: str


def _order_series() -> list[Series]:
    colours = {"FULFILLED": "#2e7d32", "PROCESSING": "#417690", "PENDING": "#9e9e9e", "FAILED": "#ba2121"}
    order = ["FULFILLED", "PROCESSING", "PENDING", "FAILED"]  # stacked from the bottom
    return [
        Series(value, "PENDING (on hold)" if value == "PENDING" else value, colours[value])
        for value in order
        if value in Order.Status.values
    ]


WEBHOOK_SERIES = [Series("SENT", "delivered", "#2e7d32"), Series("FAILED", "failed", "#ba2121")]


@dataclass(frozen=True)
class DailyActivity:
    days: list[date]
    orders: dict[str, dict[date, int]]  # status → day → count
    webhooks: dict[str, dict[date, int]]  # SENT / FAILED → day → count


def daily_activity(now: datetime | None = None, days: int = CHART_DAYS) -> DailyActivity:
    """Counts per local day, the last ``days`` days up to today (today included)."""
    now = timezone.localtime(now or timezone.now())
    today = now.date()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    tz = timezone.get_current_timezone()
    day_list = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]

    order_keys = [series.key for series in _order_series()]
    orders = _per_day_and_status(
        Order.objects.filter(status__in=order_keys, updated_at__gte=start, created_at__gte=start), order_keys, tz
    )
    webhook_keys = [series.key for series in WEBHOOK_SERIES]
    webhooks = _per_day_and_status(
        WebhookLog.objects.filter(status__in=webhook_keys, created_at__gte=start), webhook_keys, tz
    )
    return DailyActivity(day_list, orders, webhooks)


def _per_day_and_status(rows, statuses: list[str], tz) -> dict[str, dict[date, int]]:
    """One grouped query: {status: {local day of created_at: count}}."""
    counts: dict[str, dict[date, int]] = {status: {} for status in statuses}
    grouped = (
        rows.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values_list("day", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for day, status, n in grouped:
        counts[status][day] = n
    return counts


def _axis_top(value: int) -> int:
    """The y axis' top: the smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (at least 1)."""
    top, magnitude = 1, 1
    while top < value:
        for factor in (2, 5, 10):
            top = factor * magnitude
            if top >= value:
                break
        magnitude *= 10
    return top


def _panel(
    *, y0: int, title: str, series: list[Series], counts: dict[str, dict[date, int]], days: list[date], panel: str
) -> list[str]:
    plot_w = WIDTH - LEFT - RIGHT
    slot = plot_w / len(days)
    bar_w = slot * 0.62
    totals = [sum(counts[s.key].get(day, 0) for s in series) for day in days]
    top = _axis_top(max(totals, default=0))
    scale = PANEL_HEIGHT / top
    base = y0 + PANEL_HEIGHT
    out = [f'<g class="panel" data-panel="{panel}">']
    out.append(f'<text x="0" y="{y0 - 30}" class="panel-title">{escape(title)}</text>')
    # The legend, on its own line under the title.
    x = LEFT
    for s in series:
        out.append(f'<rect x="{x}" y="{y0 - 20}" width="11" height="11" fill="{s.colour}"/>')
        out.append(f'<text x="{x + 15}" y="{y0 - 10}" class="legend">{escape(s.label)}</text>')
        x += 34 + 7 * len(s.label)
    # Y axis: 0, half, top, with grid lines.
    for value in sorted({0, top // 2, top} if top > 1 else {0, top}):
        y = base - value * scale
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{value}</text>')
    out.append(
        f'<text class="axis-label" transform="translate(12 {y0 + PANEL_HEIGHT / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{"orders" if panel == "orders" else "events"}</text>'
    )
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = base
        for s in series:
            n = counts[s.key].get(day, 0)
            if not n:
                continue
            h = n * scale
            y -= h
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{s.colour}" '
                f'data-day="{day.isoformat()}" data-series="{s.key}" data-value="{n}">'
                f"<title>{day.isoformat()}: {n} {escape(s.label)}</title></rect>"
            )
        label_x = LEFT + i * slot + slot / 2
        out.append(f'<text x="{label_x:.1f}" y="{base + 16}" class="tick" text-anchor="middle">{day:%d}</text>')
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" class="axis"/>')
    out.append(
        f'<text x="{LEFT + plot_w / 2:.0f}" y="{base + 34}" class="axis-label" text-anchor="middle">day created</text>'
    )
    out.append("</g>")
    return out


def activity_chart(now: datetime | None = None) -> SafeString:
    """The overview's SVG: orders per day by status above, webhook events delivered / failed below."""
    data = daily_activity(now)
    first, last = data.days[0], data.days[-1]
    height = TOP + PANEL_HEIGHT + BOTTOM + GAP + PANEL_HEIGHT + BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="activity-chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" aria-labelledby="activity-chart-title activity-chart-desc">',
        f'<title id="activity-chart-title">Orders and webhook deliveries per day, {first:%d %b} to {last:%d %b}'
        "</title>",
        '<desc id="activity-chart-desc">Two bar charts by day of creation: orders stacked by status '
        "(fulfilled, processing, on hold, failed), and webhook events delivered or failed. Hover a bar "
        "for its count.</desc>",
        "<style>.panel-title{font-weight:bold;font-size:13px}.legend,.axis-label{font-size:12px}.tick{font-size:11px}"
        "text{fill:var(--body-fg,#333);font-family:inherit}.grid{stroke:var(--hairline-color,#e8e8e8)}"
        ".axis{stroke:var(--body-quiet-color,#666)}</style>",
    ]
    parts += _panel(
        y0=TOP,
        title=f"Orders created per day, by status (last {CHART_DAYS} days)",
        series=_order_series(),
        counts=data.orders,
        days=data.days,
        panel="orders",
    )
    parts += _panel(
        y0=TOP + PANEL_HEIGHT + BOTTOM + GAP,
        title=f"Webhook events per day: delivered / failed (last {CHART_DAYS} days)",
        series=WEBHOOK_SERIES,
        counts=data.webhooks,
        days=data.days,
        panel="webhooks",
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped or our own
