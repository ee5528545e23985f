"""Two partners on one gateway, as production runs it (every Procfile process from ``.venv-prod``,
one Redis, the ZOHO SANDBOX, real time; issue 20, point 8): T2Mobile and OTHERCO place the same
orderId for a customer with the same email, Zoho answers the first create with a 503, and OTHERCO's
endpoint trickles its headers for its test pings and answers everything else with NUL bytes. Each
partner gets its own sales order and contact, each order's event reaches its own partner once, and
T2Mobile's deliveries are on time."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from standardwebhooks import Webhook

from orders.models import Fulfilment, Order
from partners.models import Partner
from partners.services import api_key_create, webhook_secret_rotate
from tests.conftest import order_payload
from tests.faults.system import wait_for
from tests.webhooks.trickle import Request, TrickleReceiver, at_once, slow_headers
from webhooks.models import WebhookAttempt, WebhookLog

pytestmark = [pytest.mark.slow]

PINGS = 6
#: OTHERCO's answer to everything but a ping: at once, with NUL bytes and invalid UTF-8 in it.
NUL_ANSWER = b'{"ok":true}\x00\x00\xff\xfe junk \x00'


def pings_trickle(request: Request):
    """OTHERCO's endpoint: a ping's headers a byte every 2 s (for 40 s), anything else NULs at once."""
    if json.loads(request.body).get("type") == "PING":
        return slow_headers(every=2.0)
    return at_once(body=NUL_ANSWER)


def verified(receiver: TrickleReceiver, webhook: Webhook) -> list[dict]:
    """Every request's event, signature verified, in arrival order (a second delivery appears twice)."""
    return [webhook.verify(request.body, request.headers) for request in list(receiver.requests)]


def test_two_partners_colliding_ids_a_zoho_503_and_a_trickling_nul_endpoint(system, product):
    system.start()
    other = Partner.objects.create(partner_id="OTHERCO", name="OtherCo", prefix="OTH")
    webhook = Webhook(webhook_secret_rotate(partner=other, grace=timedelta(0)))
    with TrickleReceiver(answer_for=pings_trickle, give_up_after=40) as rude, requests.Session() as theirs:
        Partner.objects.filter(pk=other.pk).update(webhook_url=rude.url)
        theirs.headers["Authorization"] = f"Bearer {api_key_create(partner=other)[1]}"
        # OTHERCO's endpoint starts holding attempts: six test pings, each trickling its headers
        for _ in range(PINGS):
            assert theirs.post(f"{system.base}/t2mobile/webhooks/test", timeout=10).status_code == 202
        wait_for(lambda: len(rude.requests) >= PINGS, timeout=20, what="the pings at OTHERCO's endpoint")

        # The same orderId, customerId and email at both partners; Zoho's first create answers 503
        system.sandbox.fail_next(status=503, path_contains="/salesorders", method="POST")
        assert system.order("COLLIDE1").status_code == 202
        wait_for(
            lambda: Fulfilment.objects.filter(order__order_id="COLLIDE1", last_error__contains="HTTP 503").exists(),
            timeout=30,
            what="T2Mobile's first create refused with 503",
        )
        answer = theirs.post(
            f"{system.base}/t2mobile/fulfilment",
            json=order_payload(orderId="COLLIDE1"),
            headers={"Idempotency-Key": "other-COLLIDE1"},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text

        # Then both are fulfilled (T2Mobile's on its retry, ~30 s later)
        wait_for(
            lambda: Order.objects.filter(order_id="COLLIDE1", status=Order.Status.FULFILLED).count() == 2,
            timeout=120,
            what="both COLLIDE1 fulfilled",
            describe=lambda: system.flow_state(["COLLIDE1"]),
        )
        ours = Order.objects.get(order_id="COLLIDE1", partner__partner_id=settings.PARTNER_ID)
        its = Order.objects.get(order_id="COLLIDE1", partner=other)

        # and T2Mobile's ORDER_FULFILLED arrives within 5 s although OTHERCO's endpoint is trickling
        def ours_received():
            return [e for e in system.receiver.verified() if e["type"] == "ORDER_FULFILLED"]

        wait_for(ours_received, timeout=30, interval=0.05, what="T2Mobile's ORDER_FULFILLED")
        seen = time.time()
        logged = WebhookLog.objects.get(order=ours, event_type="ORDER_FULFILLED")
        on_time = seen - logged.created_at.timestamp()
        wait_for(
            lambda: [e for e in verified(rude, webhook) if e["type"] == "ORDER_FULFILLED"],
            timeout=60,
            what="OTHERCO's ORDER_FULFILLED",
        )

        # Every ping attempt has ended and was recorded: nothing in flight, nothing sent unrecorded
        pings = WebhookLog.objects.filter(partner=other, event_type="PING")

        def settled():
            sent = {}
            for event in verified(rude, webhook):
                sent[event["id"]] = sent.get(event["id"], 0) + 1
            recorded = {log.event_id: log.attempts.count() for log in pings}
            return sent if all(sent.get(i, 0) == n for i, n in recorded.items()) and len(sent) > PINGS else None

        deliveries = wait_for(settled, timeout=90, what="every ping attempt recorded")

    print(
        f"\ntwo partners: T2Mobile's ORDER_FULFILLED received {on_time:.2f} s after it was recorded; "
        f"deliveries at OTHERCO's endpoint by event: {sorted(deliveries.values())}"
    )
    # Two sales orders, each numbered after its partner, on two contacts
    mine, other_so = (
        system.sandbox.sales_order_numbered("T2M-COLLIDE1"),
        system.sandbox.sales_order_numbered("OTH-COLLIDE1"),
    )
    assert (ours.zoho_sales_order_id, its.zoho_sales_order_id) == (mine["salesorder_id"], other_so["salesorder_id"])
    assert mine["customer_id"] != other_so["customer_id"]
    assert [c["contact_id"] for c in system.sandbox.contacts_named("T2M-CUST-0091")] == [mine["customer_id"]]
    assert [c["contact_id"] for c in system.sandbox.contacts_named("OTH-CUST-0091")] == [other_so["customer_id"]]
    assert len(system.sandbox.sales_orders_for("COLLIDE1")) == 2
    # Each order's event reached its own partner, once, carrying its own sales order
    [our_event] = [e for e in system.receiver.verified() if e["type"] == "ORDER_FULFILLED"]
    [their_event] = [e for e in verified(rude, webhook) if e["type"] == "ORDER_FULFILLED"]
    assert our_event["data"]["salesOrderId"] == mine["salesorder_id"]
    assert their_event["data"]["salesOrderId"] == other_so["salesorder_id"]
    assert on_time < 5
    # OTHERCO's NUL answer is recorded, cleaned, as a success
    their_log = WebhookLog.objects.get(order=its, event_type="ORDER_FULFILLED")
    assert their_log.status == WebhookLog.Status.SENT
    [attempt] = their_log.attempts.all()
    assert attempt.status_code == 200 and "\x00" not in attempt.response_excerpt
    # Each ping attempt ended at the deadline, and no ping was sent more often than it was attempted
    durations = WebhookAttempt.objects.filter(log__in=pings).values_list("duration_ms", flat=True)
    assert durations and max(durations) <= settings.WEBHOOK_TIMEOUT_SECONDS * 1000 + 2000
    assert all(n <= 3 for n in deliveries.values())
    assert system.dead() == {}
