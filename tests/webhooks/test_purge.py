"""Retention: SENT events go after 30 days, FAILED after 90, with their attempts, in batches."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webhooks.conftest import record
from webhooks import retention
from webhooks.models import WebhookAttempt, WebhookLog
from webhooks.tasks import purge_webhook_logs

pytestmark = pytest.mark.django_db


def _event(partner, status, age_days):
    event = record(partner)
    WebhookLog.objects.filter(pk=event.pk).update(status=status, created_at=timezone.now() - timedelta(days=age_days))
    WebhookAttempt.objects.create(log=event, status_code=200)
    return event.pk


def test_purge_deletes_old_sent_and_failed_events_and_keeps_the_rest(hooked_partner, monkeypatch):
    monkeypatch.setattr(retention, "PURGE_BATCH_SIZE", 2)  # several batches with few rows
    gone = [_event(hooked_partner, "SENT", 31) for _ in range(3)] + [_event(hooked_partner, "FAILED", 91)]
    kept = [
        _event(hooked_partner, "SENT", 29),
        _event(hooked_partner, "FAILED", 89),
        _event(hooked_partner, "PENDING", 200),
    ]

    deleted = purge_webhook_logs()

    assert deleted == len(gone)
    assert sorted(WebhookLog.objects.values_list("pk", flat=True)) == sorted(kept)
    assert not WebhookAttempt.objects.filter(log_id__in=gone).exists()
    assert WebhookAttempt.objects.filter(log_id__in=kept).count() == 3


def test_retention_days_are_settings(hooked_partner, settings):
    settings.WEBHOOK_SENT_RETENTION_DAYS = 7
    pk = _event(hooked_partner, "SENT", 8)

    purge_webhook_logs()

    assert not WebhookLog.objects.filter(pk=pk).exists()
