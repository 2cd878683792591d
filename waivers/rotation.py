"""Rotating the provider's webhook signing secret without dropping deliveries.

The provider signs each delivery with one secret. To rotate it, we deploy
the new secret with the old one kept as
``PROVIDER_<CODE>_WEBHOOK_SECRET_PREVIOUS`` and an end time
``PROVIDER_<CODE>_WEBHOOK_SECRET_PREVIOUS_UNTIL``; then the provider is
switched to the new secret. Until the end time both verify, so deliveries
signed before, during and after the switch (retries included) are taken;
from the end time on only the new one does, whether or not anyone removes
the old value. The end is read from the environment rather than inferred
from when a fingerprint changed: the old value has to come from the
environment anyway (we never store values), and a window that depended on
a scheduled observation would open late, or never, if the task did not run.

The webhook view verifies against ``finance.webhooks.webhook_secrets``,
which offers the previous secret while the window is open; this module
tells the gate what is wrong or left over with a window.
"""

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings


@dataclass(frozen=True)
class OverlapWindow:
    provider: str
    until: datetime
    # The previous secret equals the current one: the window does nothing.
    same_as_current: bool

    def is_open(self, now: datetime) -> bool:
        return now < self.until


def overlap_window(provider: str) -> OverlapWindow | None:
    previous = getattr(settings, "PROVIDER_WEBHOOK_SECRETS_PREVIOUS", {}) or {}
    entry = previous.get(provider)
    if not entry:
        return None
    current = settings.PROVIDERS[provider]["webhook_secret"]
    return OverlapWindow(
        provider=provider,
        until=entry["until"],
        same_as_current=hmac.compare_digest(entry["secret"], current),
    )


def overlap_problems(provider: str, *, now: datetime) -> list[str]:
    """What is wrong with the provider's overlap window, for the gate."""
    window = overlap_window(provider)
    if window is None:
        return []
    longest = timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_MAX_HOURS)
    if window.is_open(now) and window.until - now > longest:
        return [
            f"the previous webhook secret stays valid until "
            f"{window.until.isoformat()}, more than "
            f"{settings.WEBHOOK_SECRET_OVERLAP_MAX_HOURS} hours from now"
        ]
    return []


def overlap_notes(provider: str, *, now: datetime) -> list[str]:
    """Harmless leftovers of a rotation, worth cleaning up."""
    window = overlap_window(provider)
    if window is None:
        return []
    if window.same_as_current:
        return ["the previous webhook secret is the current one: remove it"]
    if not window.is_open(now):
        return [
            f"the overlap ended {window.until.isoformat()}: remove the previous "
            "webhook secret from the environment"
        ]
    return [f"old and new webhook secrets both verify until {window.until}"]
