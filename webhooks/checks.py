"""System check of the webhooks app: an attempt fits in its claim's lease.

An attempt is cut at WEBHOOK_TIMEOUT_SECONDS (``deadline.py``) and must then still be recorded
before its claim's lease (WEBHOOK_CLAIM_LEASE_SECONDS) runs out, or the event is claimed and sent
again while the first attempt is in flight, and the partner's in-flight slots, which lapse with the
lease, no longer bound the threads held by its endpoint. The delivery never lets an attempt outlive
its lease whatever the settings (``sending.py``); with a lease too short for the timeout, attempts
would be cut short of the timeout partners are promised, so ``manage.py check`` and ``migrate``
refuse it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from webhooks.delivery import RECORD_MARGIN_SECONDS


def check_attempt_fits_in_lease(app_configs=None, **kwargs) -> list[Error]:
    timeout, lease = settings.WEBHOOK_TIMEOUT_SECONDS, settings.WEBHOOK_CLAIM_LEASE_SECONDS
    if timeout > 0 and timeout + RECORD_MARGIN_SECONDS <= lease:
        return []
    return [
        Error(
            f"WEBHOOK_TIMEOUT_SECONDS ({timeout:g}) plus {RECORD_MARGIN_SECONDS:g} s to record the attempt must be "
            f"positive and fit in WEBHOOK_CLAIM_LEASE_SECONDS ({lease:g}).",
            hint=f"Set WEBHOOK_CLAIM_LEASE_SECONDS to at least {timeout + RECORD_MARGIN_SECONDS:g}, "
            "or lower WEBHOOK_TIMEOUT_SECONDS.",
            id="webhooks.E001",
        )
    ]


def webhook_checks_register() -> None:
    """Called by ``WebhooksConfig.ready``."""
    register(check_attempt_fits_in_lease)
