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

The webhook view verifies against ``webhook_secrets(code)``; ``sign`` and
``verify`` are the header format (``Provider-Signature: t=<unix>,v1=<hex>``,
HMAC-SHA256 over ``"<t>.<raw body>"``) for tests and tools.
"""

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone


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


def webhook_secrets(provider: str, *, now: datetime | None = None) -> list[str]:
    """The secrets a delivery from ``provider`` may be signed with, current first.

    The previous secret is included while its overlap window is open, that
    is strictly before its end time.
    """
    now = now or timezone.now()
    secrets = [settings.PROVIDERS[provider]["webhook_secret"]]
    window = overlap_window(provider)
    if window and window.is_open(now) and not window.same_as_current:
        previous = settings.PROVIDER_WEBHOOK_SECRETS_PREVIOUS[provider]["secret"]
        secrets.append(previous)
    return secrets


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


def sign(*, secret: str, body: bytes, timestamp: int) -> str:
    """The ``Provider-Signature`` header value for ``body`` signed at ``timestamp``."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    *,
    header: str,
    body: bytes,
    secrets: Sequence[str],
    tolerance: int,
    now: float | None = None,
) -> bool:
    """Whether any of ``secrets`` signed ``body`` within ``tolerance`` seconds."""
    timestamp, candidates = "", []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if not timestamp.isdigit():
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = [sign(secret=s, body=body, timestamp=int(timestamp)) for s in secrets]
    return any(
        hmac.compare_digest(e.split("v1=", 1)[1], candidate)
        for e in expected
        for candidate in candidates
    )
