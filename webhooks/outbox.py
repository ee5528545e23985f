"""Recording events: the outbox that a change writes its event into, in the change's own transaction.

``event_record`` is the only way an event row is created. It must be called inside the caller's
transaction (the change it reports): the row commits or rolls back with the change. The body is
serialised once there and stored; every delivery attempt signs and sends exactly these bytes. The
first attempt is queued only after the commit, within a per-process budget of direct queueing per
partner (``DIRECT_ENQUEUE_PER_SECOND``); what is over it is left to one dispatch.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.times import iso_utc
from partners.models import Partner
from webhooks.dispatch import delivery_enqueue, dispatch_enqueue
from webhooks.models import WebhookLog
from webhooks.selectors import delivery_gate

# New events of one partner queued one by one, per process and second: as many as may be in flight
# to it at once (WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER's default); more would wait for a slot, and one
# dispatch sends the rest in batches at a fraction of the cost.
DIRECT_ENQUEUE_PER_SECOND = 8


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def event_record(
    *,
    partner: Partner,
    event_type: str,
    data: dict,
    order_pk: int | None = None,
    dedup_key: str | None = None,
) -> WebhookLog | None:
    """Write one event row in the caller's transaction; None when ``dedup_key`` was already used.

    ``order_pk`` is the order the event is about, if any: the events of one order are delivered one
    after another, in the order they were recorded (the caller builds ``data``; this room never reads
    orders).

    Delivery is queued only after the caller's transaction commits; if that queueing fails, the
    periodic ``webhooks.deliver_due_webhooks`` sends the event anyway (``next_retry_at`` is now).
    """
    now = timezone.now()
    event_id = new_event_id()
    envelope = {
        "id": event_id,
        "type": event_type,
        "createdAt": iso_utc(now),
        "partnerId": partner.partner_id,
        "data": data,
    }
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    try:
        with transaction.atomic():
            log = WebhookLog.objects.create(
                event_id=event_id,
                partner=partner,
                event_type=event_type,
                order_id=order_pk,
                payload=json.loads(body),  # exactly what is sent, as JSON
                body=body,
                status=WebhookLog.Status.PENDING,
                next_retry_at=now,
                dedup_key=dedup_key,
                created_at=now,  # the signed body's createdAt, to the microsecond
            )
    except IntegrityError:
        if dedup_key and WebhookLog.objects.filter(dedup_key=dedup_key).exists():
            return None
        raise
    log_pk, partner_pk = log.pk, partner.pk
    transaction.on_commit(lambda: _new_event_enqueue(log_pk, partner_pk=partner_pk))
    return log


def _new_event_enqueue(log_pk: int, *, partner_pk: int) -> None:
    """Queue the first attempt of a new event right after its commit.

    Not for a paused partner or a failing or disabled endpoint: those events are left to the
    dispatcher (one attempt at a time; none while disabled), so that thousands of events for a dead
    endpoint do not fill the ``webhooks`` queue ahead of other partners'. And beyond
    ``DIRECT_ENQUEUE_PER_SECOND`` events of one partner in a second (a batch job committing
    thousands), the rest are claimed and queued by a dispatch in batches, never more than
    WEBHOOK_DISPATCH_BATCH_SIZE in flight; the budget is counted first, so that those cost no
    database read here, only the dispatch's marker. Every such event asks for the dispatch: at most
    one is pending per partner (``dispatch_enqueue``), and a pending one clears its marker before it
    claims, so an event committed before the claim is claimed, and one committed after queues the
    next dispatch. (Asking once a second was not enough: the events of that second that committed
    after its dispatch had claimed waited for the periodic one, a minute.)
    """
    if not _direct_enqueue_budget.take(partner_pk):
        dispatch_enqueue(partner_pk=partner_pk, countdown=0)  # the dispatch skips paused and disabled
        return
    gate = delivery_gate(log_pk=log_pk)
    if gate is None or gate.partner_paused or gate.endpoint_disabled or gate.endpoint_failures > 0:
        return
    delivery_enqueue(log_pk)


class _DirectEnqueueBudget:
    """Per process: how many new events of a partner were queued one by one in the current second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[int, tuple[int, int]] = {}  # partner pk -> (second, count)

    def take(self, partner_pk: int) -> bool:
        """May this event be queued on its own (else a dispatch sends it)?"""
        second = int(time.monotonic())
        with self._lock:
            then, count = self._seconds.get(partner_pk, (second, 0))
            count = count + 1 if then == second else 1
            self._seconds[partner_pk] = (second, count)
        return count <= DIRECT_ENQUEUE_PER_SECOND


_direct_enqueue_budget = _DirectEnqueueBudget()
