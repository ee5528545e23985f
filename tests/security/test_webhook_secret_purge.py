"""Issue 21, point 8a: signing secrets past their rotation grace do not stay stored in plain for ever.

The nightly ``partners.purge_webhook_secrets`` deletes a secret a day after its grace ended; a
partner's newest secret is never deleted, so a rotation, an expiry set by hand or a partner whose
only secret has ended never leaves the partner without one.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from partners.models import WebhookSecret
from partners.services import webhook_secret_rotate, webhook_secrets_purge
from tests.factories import PartnerFactory, WebhookSecretFactory
from webhooks.selectors import secrets_active

pytestmark = pytest.mark.django_db


def secret(partner, *, ended: timedelta | None) -> WebhookSecret:
    """A secret of ``partner`` whose grace ended ``ended`` ago (None: it has no end)."""
    return WebhookSecretFactory(partner=partner, expires_at=None if ended is None else timezone.now() - ended)


def test_a_secret_a_day_past_its_grace_is_deleted_and_the_current_one_kept(partner):
    old = secret(partner, ended=timedelta(days=3))
    current = secret(partner, ended=None)

    deleted = webhook_secrets_purge(now=timezone.now())

    assert deleted == 1
    assert list(WebhookSecret.objects.values_list("pk", flat=True)) == [current.pk]
    assert secrets_active(partner_id=partner.pk) == [current.secret]
    assert not WebhookSecret.objects.filter(secret=old.secret).exists()


def test_a_secret_within_its_grace_or_the_day_after_is_kept(partner):
    signing = secret(partner, ended=-timedelta(hours=5))  # grace ends in 5 hours: still signs
    just_ended = secret(partner, ended=timedelta(hours=20))
    secret(partner, ended=None)

    deleted = webhook_secrets_purge(now=timezone.now())

    assert deleted == 0
    assert WebhookSecret.objects.filter(pk__in=[signing.pk, just_ended.pk]).count() == 2


def test_a_partner_never_loses_its_only_secret_even_long_past_its_end(partner):
    only = secret(partner, ended=timedelta(days=90))
    other = PartnerFactory()
    older = secret(other, ended=timedelta(days=60))
    newest = secret(other, ended=timedelta(days=30))

    deleted = webhook_secrets_purge(now=timezone.now())

    assert deleted == 1
    assert set(WebhookSecret.objects.values_list("pk", flat=True)) == {only.pk, newest.pk}
    assert not WebhookSecret.objects.filter(pk=older.pk).exists()


def test_after_rotations_the_secrets_that_sign_are_untouched(partner):
    first = webhook_secret_rotate(partner=partner, grace=timedelta(0))
    WebhookSecret.objects.filter(secret=first).update(expires_at=timezone.now() - timedelta(days=2))
    second = webhook_secret_rotate(partner=partner, grace=timedelta(hours=24))
    third = webhook_secret_rotate(partner=partner, grace=timedelta(hours=24))

    webhook_secrets_purge(now=timezone.now())

    assert secrets_active(partner_id=partner.pk) == [third, second]
    assert not WebhookSecret.objects.filter(secret=first).exists()


def test_the_nightly_task_purges_through_run_task(partner):
    secret(partner, ended=timedelta(days=3))
    secret(partner, ended=None)
    out = StringIO()

    call_command("run_task", "partners.purge_webhook_secrets", stdout=out)

    assert WebhookSecret.objects.count() == 1
    assert "'deleted': 1" in out.getvalue()
