"""Sending a claimed batch of one partner's events: the POSTs on up to ``lanes`` threads at once.

The URL guard runs once for the batch and every POST goes to the address it checked
(``WebhookClient.send``); the secrets are read once; each attempt is signed with its own timestamp.
The lanes share the client's pool of keep-alive sessions. No lane touches the database: the caller
records the outcomes, all in one transaction.

Four rules stop a batch early, leaving its remaining events unsent for the caller to give back:
- an attempt that fails (anything but 2xx and 410): the endpoint is now failing, and a failing
  endpoint gets one attempt at a time, through the dispatcher;
- a 410: the endpoint says it is gone, and is disabled (``outcomes.py`` decides; a PING's 410 only
  stops the batch, whose rest the dispatcher sends);
- ``end_by``: every attempt has ended by then (the claim's lease less the time to record): an
  attempt is given WEBHOOK_TIMEOUT_SECONDS, and starts only if those fit before ``end_by``; a lane's
  first attempt starts with what is left when less is (``WebhookClient.send`` cuts it at its
  deadline, so no attempt outlives its claim and no event is sent twice because one was slow);
- ``paused``, asked by the calling thread once a second while the lanes send (a slow endpoint's
  batch takes a while): staff paused the partner, so no further attempt starts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from core.instruments import webhook_attempt_count
from webhooks.client import TIMEOUT_PREFIX, CheckedUrl, DeliveryResult, WebhookClient
from webhooks.signing import signature_headers

HTTP_GONE = 410
PAUSE_CHECK_SECONDS = 1.0

_client = WebhookClient()


@dataclass(frozen=True)
class ClaimedEvent:
    """What an attempt of an event needs, read with its claim."""

    pk: int
    event_id: str
    event_type: str
    body: str
    retries: int
    order_id: int | None  # the order's pk, for the order's next event
    order_ref: str | None  # ``data.orderId``, for the log lines


@dataclass(frozen=True)
class Sent:
    """One attempt made: when it started, and what came of it."""

    event: ClaimedEvent
    started_at: datetime
    result: DeliveryResult

    @property
    def endpoint_failed(self) -> bool:
        """Neither delivered nor refused for this event only (410): the endpoint is failing."""
        return not self.result.delivered and self.result.status_code != HTTP_GONE


@dataclass(frozen=True)
class Target:
    """Where and how a partner's batch goes."""

    url: str
    scheme: str
    secrets: Sequence[str]
    partner: str = ""  # the partner's partner_id, the metrics' label


def batch_send(
    *,
    events: Sequence[ClaimedEvent],
    target: Target,
    lanes: int,
    end_by: float,
    paused: Callable[[], bool] = lambda: False,
) -> tuple[list[Sent], list[ClaimedEvent]]:
    """Attempt ``events`` on up to ``lanes`` threads; the attempts made, and the events not attempted.
    The lanes never touch the database; ``paused`` is called from this thread."""
    waiting = deque(events)
    sent: list[Sent] = []
    lock, stop = threading.Lock(), threading.Event()
    checked: CheckedUrl | DeliveryResult
    if not target.secrets:
        checked = DeliveryResult(status_code=None, duration_ms=0, error="no active webhook secret for the partner")
    else:
        checked = _client.check(target.url)

    timeout = settings.WEBHOOK_TIMEOUT_SECONDS

    def lane() -> None:
        first = True
        while not stop.is_set():
            with lock:
                left = end_by - time.monotonic()
                if not waiting or left <= 0 or (left < timeout and not first):
                    return
                event = waiting.popleft()
            first = False
            started_at = timezone.now()
            if isinstance(checked, DeliveryResult):
                result = checked  # refused URL or no secret: the same answer for every event
            else:
                headers = signature_headers(
                    scheme=target.scheme,
                    secrets=target.secrets,
                    msg_id=event.event_id,
                    timestamp=int(time.time()),
                    body=event.body,
                )
                result = _client.send(
                    checked=checked, body=event.body.encode("utf-8"), headers=headers, seconds=min(timeout, left)
                )
                webhook_attempt_count(
                    partner=target.partner,
                    status_code=result.status_code,
                    timed_out=result.error.startswith(TIMEOUT_PREFIX),
                    seconds=result.duration_ms / 1000,
                )
            attempt = Sent(event=event, started_at=started_at, result=result)
            with lock:
                sent.append(attempt)
            if attempt.endpoint_failed or attempt.result.status_code == HTTP_GONE:
                stop.set()

    if len(events) == 1:
        lane()
        return sent, list(waiting)
    count = max(1, min(lanes, len(events)))
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="webhook-lane") as pool:
        futures = [pool.submit(lane) for _ in range(count)]
        running = set(futures)
        while running:
            _, running = wait(running, timeout=PAUSE_CHECK_SECONDS)
            if running and not stop.is_set() and paused():
                stop.set()
        for future in futures:
            future.result()  # a lane's own error (never a failed delivery) is raised here
    return sent, list(waiting)
