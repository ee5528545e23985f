"""The gateway's Prometheus counters and histograms, incremented where each event happens.

Every process (each gunicorn worker, each Celery worker and its prefork children) counts in its own
memory, or, when ``PROMETHEUS_MULTIPROC_DIR`` names a directory, in files there (prometheus_client's
multiprocess mode): ``/metrics`` then sums the files of every process that shares the directory,
those of processes that have exited included, so a counter never goes down when a worker dies. The
variable must be in the environment before prometheus_client is first imported (prometheus_client
picks its mode at import); this module refuses to load when it was set too late, rather than let
every process count alone unseen. The directory is wiped when the whole service starts (never by a
process starting: the others' files are in it); see docs/runbook.md, "Logs and metrics".

Label values are bounded: a partner's ``partner_id`` (the partners table), a Zoho endpoint's short
name, an outcome class, a URL pattern's name. Nothing here queries the database; an increment is a
``.labels()`` lookup and an add.
"""

from __future__ import annotations

import os
import time

import prometheus_client.values
from prometheus_client import CollectorRegistry, Counter, Histogram

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
MULTIPROCESS = bool(MULTIPROC_DIR)
if not MULTIPROCESS and "PROMETHEUS_MULTIPROC_DIR" in os.environ:
    # Set but empty (an env file's `PROMETHEUS_MULTIPROC_DIR=`) means unset: prometheus_client, which
    # tests only that the name is present, would write its files into the working directory.
    del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    prometheus_client.values.ValueClass = prometheus_client.values.MutexValue

if MULTIPROCESS:
    if prometheus_client.values.ValueClass is prometheus_client.values.MutexValue:
        raise RuntimeError(
            "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: this process would "
            "count alone; set it in the process's environment before it starts"
        )
    # Creating it is harmless for the other processes; wiping it is the service start's job.
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

#: Our counters and histograms (not prometheus_client's default registry with its process metrics).
REGISTRY = CollectorRegistry(auto_describe=True)

ORDERS_ACCEPTED = Counter(
    "t2m_orders_accepted", "Orders accepted by intake (new orders, not replays)", ["partner"], registry=REGISTRY
)
ORDERS_FINISHED = Counter(
    "t2m_orders_finished", "Orders that reached FULFILLED or FAILED", ["partner", "status"], registry=REGISTRY
)
ZOHO_CALLS = Counter(
    "t2m_zoho_calls",
    "HTTP calls to Zoho (API and token), by endpoint and outcome (2xx, 3xx, 4xx, 429, 5xx, timeout, error)",
    ["endpoint", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "t2m_webhook_attempts",
    "Webhook delivery attempts, by partner and outcome (2xx, 3xx, 4xx, 5xx, timeout, error)",
    ["partner", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_DEAD_LETTERS = Counter(
    "t2m_webhook_dead_letters",
    "Webhook events that became FAILED (retries used up, or a 410)",
    ["partner"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "t2m_http_requests",
    "HTTP requests answered, by URL pattern name (unmatched, admin), method and status",
    ["view", "method", "status"],
    registry=REGISTRY,
)
PROVISIONING_SECONDS = Histogram(
    "t2m_provisioning_seconds",
    "Duration of one provisioning job run (one order's attempt, Zoho calls included)",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "t2m_webhook_attempt_seconds",
    "Duration of one webhook delivery attempt",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
    registry=REGISTRY,
)
HTTP_REQUEST_SECONDS = Histogram(
    "t2m_http_request_seconds",
    "Duration of one HTTP request in Django, by URL pattern name",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)

ZOHO_ENDPOINTS = frozenset({"organizations", "items", "contacts", "salesorders"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def status_class(status_code: int | None) -> str:
    """``2xx`` … ``5xx`` for an HTTP status, ``error`` for none or one outside 100-599."""
    if status_code is None or not 100 <= status_code <= 599:
        return "error"
    return f"{status_code // 100}xx"


def zoho_endpoint(path: str) -> str:
    """The short, bounded name of a Zoho API path: ``/salesorders/123/status/confirmed`` → ``salesorders``."""
    first = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
    return first if first in ZOHO_ENDPOINTS else "other"


def zoho_call_count(*, endpoint: str, status_code: int | None = None, timed_out: bool = False) -> None:
    """One HTTP call to Zoho: its answer's status, or no answer (a timeout, another transport error)."""
    if timed_out:
        outcome = "timeout"
    elif status_code == 429:
        outcome = "429"
    else:
        outcome = status_class(status_code)
    ZOHO_CALLS.labels(endpoint, outcome).inc()


def webhook_attempt_count(*, partner: str, status_code: int | None, timed_out: bool, seconds: float) -> None:
    """One webhook delivery attempt and how long it took."""
    WEBHOOK_ATTEMPTS.labels(partner, "timeout" if timed_out else status_class(status_code)).inc()
    WEBHOOK_ATTEMPT_SECONDS.observe(seconds)


def _view_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    if "admin" in match.namespaces:
        return "admin"
    return match.url_name or "unmatched"


class RequestMetricsMiddleware:
    """Counts and times every request by URL pattern name, never by its raw path (a hostile client
    choosing paths must not grow the label set). Outermost, so that it sees every answer, errors too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        view = _view_name(request)
        method = request.method if request.method in METHODS else "other"
        HTTP_REQUESTS.labels(view, method, str(response.status_code)).inc()
        HTTP_REQUEST_SECONDS.labels(view).observe(time.perf_counter() - started)
        return response
