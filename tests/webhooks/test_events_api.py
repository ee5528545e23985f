"""The events API as T2Mobile uses it (partner-api.md, "Events"): what we sent, its attempts, resend,
recover and the test ping, through the partner's API key, a real local receiver, PostgreSQL, Redis
and, where delivery is involved, a real Celery worker."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks import Webhook

import webhooks.outbox
from partners.services import secret_generate
from tests.factories import PartnerFactory
from tests.webhooks.conftest import Answer, make_order, record, wait_until
from webhooks.delivery import event_deliver
from webhooks.dispatch import events_dispatch_due
from webhooks.models import WebhookAttempt, WebhookEndpointState, WebhookLog

EVENTS = "/t2mobile/events"


def _json(api, method: str, path: str, body=None, **extra):
    data = None if body is None else json.dumps(body)
    return getattr(api, method)(path, data=data, content_type="application/json", **extra)


def _all_pages(api, query: str = "", limit: int = 2, between=None) -> list[str]:
    ids, cursor, pages = [], None, 0
    while True:
        url = f"{EVENTS}?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).json()
        ids += [item["id"] for item in body["events"]]
        cursor, pages = body["nextCursor"], pages + 1
        if pages == 1 and between:
            between()
        if cursor is None:
            return ids


def _row(event: WebhookLog) -> dict:
    return WebhookLog.objects.filter(pk=event.pk).values().get()


# --- GET /t2mobile/events -------------------------------------------------------------------------


@pytest.mark.django_db
def test_listed_event_is_the_body_the_receiver_got(api, hooked_partner, receiver):
    event = record(hooked_partner)
    event_deliver(log_pk=event.pk)

    body = api.get(EVENTS).json()

    (item,) = body["events"]
    (received,) = receiver.received
    assert body["success"] is True and body["nextCursor"] is None
    assert item["event"] == json.loads(received.body)
    assert item["id"] == received.event_id == event.event_id
    assert item["type"] == "ORDER_FULFILLED" and item["orderId"] == event.payload["data"]["orderId"]
    assert item["deliveryStatus"] == "SENT" and item["attempts"] == 1
    assert item["lastAttemptAt"].endswith("Z") and item["nextAttemptAt"] is None


@pytest.mark.django_db
def test_listed_created_at_is_the_signed_bodys_even_at_the_turn_of_a_second(api, hooked_partner, monkeypatch):
    """The row's time was taken a moment after the body's: across a second's turn the list said
    10:00:05 for a body signed 10:00:04. The outbox's clock is fixed a microsecond before a turn."""
    moment = timezone.now().replace(microsecond=999_999) - timedelta(seconds=30)
    monkeypatch.setattr(webhooks.outbox, "timezone", type("FixedClock", (), {"now": staticmethod(lambda: moment)}))
    event = record(hooked_partner)

    (item,) = api.get(EVENTS).json()["events"]

    assert item["createdAt"] == item["event"]["createdAt"] == event.payload["createdAt"]
    assert WebhookLog.objects.get(pk=event.pk).created_at == moment


@pytest.mark.django_db
def test_pending_event_shows_its_next_attempt(api, hooked_partner):
    record(hooked_partner)

    (item,) = api.get(EVENTS).json()["events"]

    assert item["deliveryStatus"] == "PENDING" and item["attempts"] == 0
    assert item["lastAttemptAt"] is None and item["nextAttemptAt"].endswith("Z")


@pytest.mark.django_db
def test_pages_give_every_event_once_newest_first_with_an_insert_between(api, hooked_partner):
    events = [record(hooked_partner) for _ in range(7)]
    # three events in the same microsecond: the pk breaks the tie
    WebhookLog.objects.filter(pk__in=[e.pk for e in events[2:5]]).update(created_at=events[2].created_at)
    late = []

    ids = _all_pages(api, between=lambda: late.append(record(hooked_partner)))

    expected = [e.event_id for e in sorted(events, key=lambda e: (_row(e)["created_at"], e.pk), reverse=True)]
    assert ids == expected
    assert api.get(f"{EVENTS}?limit=1").json()["events"][0]["id"] == late[0].event_id


@pytest.mark.django_db
def test_filters_by_type_order_status_and_time(api, hooked_partner):
    order = make_order(hooked_partner, "T2M-FILTER-1")
    fulfilled = record(hooked_partner, order=order)
    reminder = record(hooked_partner, "EXPIRY_REMINDER", order=order)
    other_order = record(hooked_partner, "ORDER_FAILED")
    WebhookLog.objects.filter(pk=fulfilled.pk).update(status="SENT", created_at=timezone.now() - timedelta(days=2))
    yesterday = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def ids(query: str) -> set[str]:
        response = api.get(f"{EVENTS}?{query}")
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["events"]}

    assert ids("type=ORDER_FAILED,EXPIRY_REMINDER") == {reminder.event_id, other_order.event_id}
    assert ids("orderId=T2M-FILTER-1") == {fulfilled.event_id, reminder.event_id}
    assert ids("deliveryStatus=SENT") == {fulfilled.event_id}
    assert ids(f"createdSince={yesterday}") == {reminder.event_id, other_order.event_id}
    assert ids(f"createdBefore={yesterday}") == {fulfilled.event_id}
    assert ids("orderId=T2M-FILTER-1&deliveryStatus=PENDING&type=EXPIRY_REMINDER") == {reminder.event_id}


@pytest.mark.django_db
def test_another_partners_events_are_not_listed(api, hooked_partner):
    other = PartnerFactory(partner_id="OTHER001", name="Other")
    record(other)

    assert api.get(EVENTS).json()["events"] == []


def _with_two_attempts(partner) -> WebhookLog:
    event = record(partner)
    WebhookAttempt.objects.create(log=event, status_code=503, response_excerpt="busy")
    WebhookAttempt.objects.create(log=event, status_code=200, response_excerpt="ok")
    return event


@pytest.mark.django_db
def test_listing_fifty_events_costs_the_queries_of_one(api, hooked_partner):
    _with_two_attempts(hooked_partner)
    api.get(EVENTS)  # the key's and the partner's reads warm like any request's
    with CaptureQueriesContext(connection) as one:
        api.get(EVENTS)
    for _ in range(49):
        _with_two_attempts(hooked_partner)

    with CaptureQueriesContext(connection) as fifty:
        body = api.get(EVENTS).json()

    assert len(body["events"]) == 50 and {item["attempts"] for item in body["events"]} == {2}
    assert len(fifty) == len(one)


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("cursor=" + "A" * 3000, "cursor"),  # longer URLs are 414 URI_TOO_LONG
        ("cursor=%F0%9F%92%A5", "cursor"),
        ("cursor=eyJ0IjoiMjAyNi0xMi0wMlQxNjoyNTowOCIsImlkIjoxfQ", "cursor"),  # a time without offset
        ("cursor=eyJ0IjogIjIwMjYtMTItMDJUMTY6MjU6MDgrMjM6NTkiLCAiaWQiOiA1fQ", "cursor"),  # offset +23:59
        ("cursor=eyJ0IjoiMjAyNi0xMi0wMlQxNjoyNTowOCswMDowMCIsImlkIjo5OTk5OTk5OTk5OTk5OTk5OTk5OTl9", "cursor"),
        ("type=ORDER_SHIPPED", "type"),
        ("type=ORDER_FULFILLED,", "type"),
        ("type=%00", "request"),  # refused by the middleware before any view
        ("deliveryStatus=DELIVERED", "deliveryStatus"),
        ("orderId=%00", "request"),
        ("orderId=T2M%20123", "orderId"),
        ("createdSince=yesterday", "createdSince"),
        ("createdSince=2026-13-45T00:00:00Z", "createdSince"),
        ("createdBefore=9999-12-31T23:59:59-14:00", "createdBefore"),
        ("createdSince=0001-01-01T00:00:00%2B14:00", "createdSince"),
        ("createdSince=2026-12-02T00:00:00Z&createdBefore=2026-12-01T00:00:00Z", "createdBefore"),
    ],
)
@pytest.mark.django_db
def test_bad_list_parameters_are_400_validation_error_naming_the_field(api, query, field):
    response = api.get(f"{EVENTS}?{query}")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errorCode"] == "VALIDATION_ERROR" and field in body["details"]


# --- GET /t2mobile/events/{id} --------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_lists_attempts_without_the_receivers_body(api, hooked_partner, receiver):
    receiver.script = [Answer(500, body=b"internal stack trace of the partner XYZZY")]
    event = record(hooked_partner)
    event_deliver(log_pk=event.pk)
    WebhookLog.objects.filter(pk=event.pk).update(next_retry_at=timezone.now())
    event_deliver(log_pk=event.pk)

    response = api.get(f"{EVENTS}/{event.event_id}")

    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    assert [(a["statusCode"], a["error"]) for a in body["attemptLog"]] == [(500, None), (200, None)]
    assert all(set(a) == {"attemptedAt", "durationMs", "statusCode", "error"} for a in body["attemptLog"])
    assert body["attempts"] == 2 and body["deliveryStatus"] == "SENT"
    assert b"XYZZY" not in response.content and b"ok" not in response.content
    assert body["event"] == json.loads(receiver.received[-1].body)


@pytest.mark.django_db
def test_attempt_errors_are_short_and_name_none_of_our_internals(api, hooked_partner):
    event = record(hooked_partner)
    for error in (
        "timeout after 15 s",
        "ConnectionError: HTTPSConnectionPool(host='10.1.2.3', port=443): Max retries exceeded (urllib3)",
        "SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:1006)",
        "SomethingNew: requests internals",
    ):
        WebhookAttempt.objects.create(log=event, error=error)

    response = api.get(f"{EVENTS}/{event.event_id}")

    errors = [a["error"] for a in response.json()["attemptLog"]]
    assert errors == ["timeout after 15 s", "connection error", "TLS error", "request error"]
    assert b"10.1.2.3" not in response.content and b"urllib3" not in response.content


@pytest.mark.django_db
def test_detail_with_a_trailing_slash_is_the_same(api, hooked_partner):
    event = record(hooked_partner)

    assert api.get(f"{EVENTS}/{event.event_id}/").json()["id"] == event.event_id


@pytest.mark.django_db
def test_another_partners_event_is_event_not_found_on_get_and_resend(api, hooked_partner):
    other = PartnerFactory(partner_id="OTHER001", name="Other")
    theirs = record(other)
    WebhookLog.objects.filter(pk=theirs.pk).update(status="FAILED")
    before = _row(theirs)

    got = api.get(f"{EVENTS}/{theirs.event_id}")
    resent = api.post(f"{EVENTS}/{theirs.event_id}/resend")

    for response in (got, resent):
        assert response.status_code == 404
        assert response.json()["errorCode"] == "EVENT_NOT_FOUND" and response.json()["requestId"]
    assert _row(theirs) == before


@pytest.mark.parametrize(
    "event_id, status, code",
    [
        ("evt_" + "0" * 32, 404, "EVENT_NOT_FOUND"),
        ("x" * 3_000, 404, "EVENT_NOT_FOUND"),
        ("x" * 10_000, 414, "URI_TOO_LONG"),
        ("%E2%98%83%F0%9F%92%A5", 404, "EVENT_NOT_FOUND"),
        ("evt_'%20OR%201=1--", 404, "EVENT_NOT_FOUND"),
        ("evt_%00", 400, "VALIDATION_ERROR"),  # the middleware refuses NUL anywhere in a request
        ("..%2F..%2Fetc", 404, "NOT_FOUND"),
    ],
)
@pytest.mark.django_db
def test_unknown_or_hostile_ids_are_never_a_500(api, event_id, status, code):
    got = api.get(f"{EVENTS}/{event_id}")
    resent = api.post(f"{EVENTS}/{event_id}/resend")

    for response in (got, resent):
        assert response.status_code == status, (event_id[:20], response.content)
        assert response.json()["errorCode"] == code


@pytest.mark.django_db
def test_events_need_the_api_key(client, hooked_partner):
    event = record(hooked_partner)

    for response in (
        client.get(EVENTS),
        client.get(f"{EVENTS}/{event.event_id}"),
        client.post(f"{EVENTS}/{event.event_id}/resend"),
        client.post(f"{EVENTS}/recover", data="{}", content_type="application/json"),
        client.post("/t2mobile/webhooks/test"),
    ):
        assert response.status_code == 401 and response.json()["errorCode"] == "UNAUTHORIZED"
    assert WebhookLog.objects.count() == 1


@pytest.mark.parametrize(
    "method, path",
    [("post", EVENTS), ("get", f"{EVENTS}/recover"), ("delete", f"{EVENTS}/evt_x"), ("get", "/t2mobile/webhooks/test")],
)
@pytest.mark.django_db
def test_other_methods_are_405_method_not_allowed(api, method, path):
    response = getattr(api, method)(path)

    assert response.status_code == 405 and response.json()["errorCode"] == "METHOD_NOT_ALLOWED"


@pytest.mark.django_db
def test_events_calls_count_against_the_partners_rate_limit(api, partner):
    partner.rate_limit = "3/m"
    partner.save()

    statuses = [api.get(EVENTS).status_code for _ in range(3)] + [api.post("/t2mobile/webhooks/test").status_code]

    assert statuses == [200, 200, 200, 429]
    assert not WebhookLog.objects.exists()


# --- POST /t2mobile/events/{id}/resend --------------------------------------------------------------


@pytest.mark.django_db
def test_resending_a_pending_event_changes_nothing_and_queues_nothing(
    api, hooked_partner, django_capture_on_commit_callbacks
):
    event = record(hooked_partner)
    WebhookLog.objects.filter(pk=event.pk).update(retries=3, next_retry_at=timezone.now() + timedelta(hours=2))
    before = _row(event)

    with django_capture_on_commit_callbacks() as queued:
        response = api.post(f"{EVENTS}/{event.event_id}/resend")

    assert response.status_code == 202
    assert response.json() == {"success": True, "id": event.event_id, "deliveryStatus": "PENDING"}
    assert _row(event) == before
    assert queued == []


@pytest.mark.django_db
def test_resending_a_failed_event_queues_one_delivery_with_a_fresh_schedule(
    api, hooked_partner, django_capture_on_commit_callbacks
):
    event = record(hooked_partner)
    WebhookLog.objects.filter(pk=event.pk).update(status="FAILED", retries=9, next_retry_at=None)

    with django_capture_on_commit_callbacks() as queued:
        response = api.post(f"{EVENTS}/{event.event_id}/resend")

    row = _row(event)
    assert response.status_code == 202 and response.json()["deliveryStatus"] == "PENDING"
    assert (row["status"], row["retries"]) == ("PENDING", 0) and row["next_retry_at"] <= timezone.now()
    assert len(queued) == 1


@pytest.mark.parametrize(
    "content_type, data, status, code",
    [
        ("text/plain", "resend please", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/json", "{not json", 400, "MALFORMED_JSON"),
        ("application/json", "[1, 2]", 400, "MALFORMED_JSON"),
    ],
)
@pytest.mark.django_db
def test_resend_and_ping_bodies_are_json_objects_or_nothing(api, hooked_partner, content_type, data, status, code):
    event = record(hooked_partner)
    WebhookLog.objects.filter(pk=event.pk).update(status="SENT")

    for path in (f"{EVENTS}/{event.event_id}/resend", "/t2mobile/webhooks/test"):
        response = api.post(path, data=data, content_type=content_type)
        assert response.status_code == status and response.json()["errorCode"] == code

    assert _row(event)["status"] == "SENT" and WebhookLog.objects.count() == 1


# --- POST /t2mobile/events/recover: the window --------------------------------------------------


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "window, field",
    [
        ({}, "since"),
        ({"since": None}, "since"),
        ({"since": 1733150000}, "since"),
        ({"since": "last tuesday"}, "since"),
        ({"since": "+1h"}, "since"),
        ({"since": "-1h", "until": "-2h"}, "until"),
        ({"since": "-1h", "until": "-1h"}, "until"),
        ({"since": "-8d"}, "until"),
        ({"since": "-91d", "until": "-90d+1h"}, "since"),
        ({"since": "-1h", "until": "not a time"}, "until"),
        ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
    ],
)
@pytest.mark.django_db
def test_bad_recover_windows_are_400_validation_error(api, hooked_partner, window, field):
    failed = record(hooked_partner)
    WebhookLog.objects.filter(pk=failed.pk).update(status="FAILED")
    now = timezone.now()

    def when(value):
        if not isinstance(value, str) or value[:1] not in "+-":
            return value
        moment = now
        for part in value.replace("-", " -").replace("+", " +").split():
            amount, unit = int(part[:-1]), part[-1]
            moment += timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
        return _iso(moment)

    response = _json(api, "post", f"{EVENTS}/recover", {k: when(v) for k, v in window.items()})

    assert response.status_code == 400, response.content
    assert response.json()["errorCode"] == "VALIDATION_ERROR" and field in response.json()["details"]
    assert _row(failed)["status"] == "FAILED"


@pytest.mark.parametrize(
    "content_type, data, status, code",
    [
        ("text/plain", '{"since": "2026-12-01T00:00:00Z"}', 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/json", "", 400, "MALFORMED_JSON"),
        ("application/json", '["2026-12-01T00:00:00Z"]', 400, "MALFORMED_JSON"),
        ("application/json", '{"since": "2026-12-01T00:00:00Z"', 400, "MALFORMED_JSON"),
        ("application/json", '{"since": "\\u0000"}', 400, "VALIDATION_ERROR"),
    ],
)
@pytest.mark.django_db
def test_recover_takes_only_a_json_object(api, content_type, data, status, code):
    response = api.post(f"{EVENTS}/recover", data=data, content_type=content_type)

    assert response.status_code == status and response.json()["errorCode"] == code


@pytest.mark.django_db
def test_recover_takes_only_this_partners_failed_events_of_the_window(api, hooked_partner):
    now = timezone.now()
    in_window, too_old, sent = (record(hooked_partner) for _ in range(3))
    theirs = record(PartnerFactory(partner_id="OTHER001", name="Other"))
    WebhookLog.objects.filter(pk__in=[in_window.pk, too_old.pk, theirs.pk]).update(status="FAILED")
    WebhookLog.objects.filter(pk=sent.pk).update(status="SENT")
    WebhookLog.objects.filter(pk=too_old.pk).update(created_at=now - timedelta(days=3))

    response = _json(api, "post", f"{EVENTS}/recover", {"since": _iso(now - timedelta(days=2)), "until": None})

    assert response.status_code == 202 and response.json() == {"success": True, "requeued": 1}
    statuses = dict(WebhookLog.objects.values_list("pk", "status"))
    assert statuses == {in_window.pk: "PENDING", too_old.pk: "FAILED", sent.pk: "SENT", theirs.pk: "FAILED"}


# --- With a real worker: resend, recover after an outage, the test ping ------------------------------


def _status(event: WebhookLog) -> str:
    return WebhookLog.objects.values_list("status", flat=True).get(pk=event.pk)


@pytest.mark.django_db(transaction=True)
def test_resending_a_sent_event_delivers_it_again_under_the_same_webhook_id(
    api, hooked_partner, receiver, webhook_worker
):
    event = record(hooked_partner)  # autocommit: queued at once
    wait_until(lambda: _status(event) == "SENT")

    response = api.post(f"{EVENTS}/{event.event_id}/resend")
    first, again = receiver.wait_for(2)

    wait_until(lambda: _status(event) == "SENT" and api.get(f"{EVENTS}/{event.event_id}").json()["attempts"] == 2)
    assert response.status_code == 202 and response.json()["deliveryStatus"] == "PENDING"
    assert first.event_id == again.event_id == event.event_id
    assert first.body == again.body


@pytest.mark.django_db(transaction=True)
def test_recover_after_an_outage_delivers_every_failed_event_once_more_in_order(
    api, hooked_partner, receiver, webhook_worker, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = (0.1, 0.1)
    receiver.default = Answer(503)
    orders = [make_order(hooked_partner, f"T2M-OUTAGE-{n}") for n in range(2)]
    events = [
        record(hooked_partner, kind, order=order) for order in orders for kind in ("ORDER_FULFILLED", "EXPIRY_REMINDER")
    ]

    def all_failed() -> bool:
        events_dispatch_due()  # the periodic sweep, which a failing endpoint's events wait for
        return set(WebhookLog.objects.values_list("status", flat=True)) == {"FAILED"}

    wait_until(all_failed, timeout=30, interval=0.2)
    failed_listing = {item["id"] for item in api.get(f"{EVENTS}?deliveryStatus=FAILED").json()["events"]}
    outage_requests = len(receiver.received)
    receiver.default = Answer(200)

    response = _json(api, "post", f"{EVENTS}/recover", {"since": _iso(timezone.now() - timedelta(hours=1))})

    assert response.status_code == 202 and response.json() == {"success": True, "requeued": 4}
    wait_until(lambda: {_status(e) for e in events} == {"SENT"}, timeout=20)
    after = [r.event_id for r in receiver.received[outage_requests:]]
    assert failed_listing == {e.event_id for e in events}
    assert sorted(after) == sorted(e.event_id for e in events)  # each once more
    for first, second in (events[0:2], events[2:4]):
        assert after.index(first.event_id) < after.index(second.event_id)
    assert outage_requests == 4 * 3  # each: the first attempt and two retries, all 503


@pytest.mark.django_db(transaction=True)
def test_test_ping_arrives_signed_and_shows_sent(api, hooked_partner, receiver, webhook_secret, webhook_worker):
    response = api.post("/t2mobile/webhooks/test")
    (received,) = receiver.wait_for(1)

    event_id = response.json()["id"]
    verified = Webhook(webhook_secret).verify(received.body, received.headers)
    wait_until(lambda: api.get(f"{EVENTS}/{event_id}").json()["deliveryStatus"] == "SENT")
    detail = api.get(f"{EVENTS}/{event_id}").json()
    assert response.status_code == 202 and response.json() == {"success": True, "id": event_id}
    assert event_id.startswith("evt_") and received.event_id == event_id
    assert verified["type"] == "PING" and verified["data"]["message"]
    assert verified["partnerId"] == hooked_partner.partner_id
    assert detail["type"] == "PING" and detail["orderId"] is None
    assert [a["statusCode"] for a in detail["attemptLog"]] == [200]
    assert detail["event"] == json.loads(received.body)


@pytest.mark.django_db(transaction=True)
def test_test_ping_goes_out_at_once_to_an_endpoint_that_was_failing(api, hooked_partner, receiver, webhook_worker):
    WebhookEndpointState.objects.create(partner=hooked_partner, consecutive_failures=7)

    response = api.post("/t2mobile/webhooks/test")  # no periodic dispatch runs in this test
    (received,) = receiver.wait_for(1)

    assert received.event_id == response.json()["id"]
    wait_until(lambda: WebhookEndpointState.objects.get(pk=hooked_partner.pk).consecutive_failures == 0)


@pytest.mark.django_db(transaction=True)
def test_a_ping_to_a_failing_endpoint_shows_failed_after_three_attempts(
    api, hooked_partner, receiver, webhook_worker, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = (0.1,) * 5
    receiver.default = Answer(503)
    event_id = api.post("/t2mobile/webhooks/test").json()["id"]

    def failed() -> bool:
        events_dispatch_due()
        return api.get(f"{EVENTS}/{event_id}").json()["deliveryStatus"] == "FAILED"

    wait_until(failed, timeout=20, interval=0.2)
    detail = api.get(f"{EVENTS}/{event_id}").json()
    assert [a["statusCode"] for a in detail["attemptLog"]] == [503, 503, 503]
    assert detail["attempts"] == 3 and detail["nextAttemptAt"] is None
    assert receiver.ids() == [event_id] * 3


@pytest.mark.django_db
def test_test_ping_signature_fails_with_another_secret(api, hooked_partner, receiver):
    """The check above would be worthless if any secret verified: a wrong one must not."""
    response = api.post("/t2mobile/webhooks/test")
    event = WebhookLog.objects.get(event_id=response.json()["id"])
    event_deliver(log_pk=event.pk)
    (received,) = receiver.received

    with pytest.raises(Exception, match="(?i)signature"):
        Webhook(secret_generate()).verify(received.body, received.headers)


# --- The list's plan ----------------------------------------------------------------------------------


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _plan_nodes(child)


@pytest.mark.django_db
def test_a_page_is_read_from_the_partner_created_index_without_sorting(api, hooked_partner):
    for _ in range(3):
        record(hooked_partner)
    cursor = api.get(f"{EVENTS}?limit=1").json()["nextCursor"]
    with CaptureQueriesContext(connection) as queries:
        api.get(f"{EVENTS}?limit=1&cursor={cursor}")
    (page_sql,) = [q["sql"] for q in queries.captured_queries if "t2mobile_webhook_logs" in q["sql"]]

    with connection.cursor() as db:
        db.execute("SET LOCAL enable_seqscan = off")  # a table this small would be read whole
        db.execute(f"EXPLAIN (FORMAT JSON) {page_sql}")
        document = db.fetchone()[0]
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]

    top = [node for node in _plan_nodes(plan) if node.get("Relation Name") == "t2mobile_webhook_logs"]
    assert [node.get("Index Name") for node in top] == ["webhook_partner_created_idx"]
    assert not [node for node in _plan_nodes(plan) if node["Node Type"] == "Sort"]
