"""Telling the approvers that a request waits for them.

A narrow adapter: it posts to the Slack incoming webhook in
``settings.SLACK_WEBHOOK_URL`` when one is set and only logs otherwise.
It stands in for the alerts app (retries, paging, e-mail fallback), which
is built on another branch; when the two meet, ``notify_approvers`` should
hand its message to the alerts API instead, and "the approvers" should
become the on-call Approver of the incidents app's rotation. Until then
the message goes to the channel where the Approver role listens.
"""

import requests
import structlog
from django.conf import settings
from django.urls import reverse

from finance.money import format_amount

log = structlog.get_logger(__name__)


class NotificationFailed(Exception):
    """The channel did not take the message; the task retries."""


def review_url(override) -> str:
    path = reverse("admin:overrides_overriderequest_change", args=[override.pk])
    return f"{settings.OVERRIDES_LINK_BASE_URL}{path}"


def message_text(override) -> str:
    preview = override.submitted_preview or {}
    lines = [
        f"Override request {override.pk} needs an Approver (not {override.doer}).",
        f"{preview.get('summary', override.action)}",
        f"Ticket {override.ticket_reference}. Reason: {override.reason}",
    ]
    postings = preview.get("postings") or []
    if postings:
        lines.append(
            "Postings: "
            + "; ".join(
                f"{p['label']} {format_amount(p['amount'], p['currency'])}"
                for p in postings
            )
        )
    lines.append(
        f"Expires {override.expires_at:%Y-%m-%d %H:%M} UTC: {review_url(override)}"
    )
    return "\n".join(lines)


def notify_approvers(override) -> bool:
    """Post the request to the approvers' channel; False when none is set up.

    Raises NotificationFailed when the channel refuses or cannot be reached.
    """
    text = message_text(override)
    url = settings.SLACK_WEBHOOK_URL
    if not url:
        log.warning(
            "override.notify_unconfigured", override_id=override.pk, channel="slack"
        )
        return False
    try:
        response = requests.post(
            url,
            json={"text": text},
            timeout=(settings.PROVIDER_CONNECT_TIMEOUT, settings.PROVIDER_READ_TIMEOUT),
        )
    except requests.RequestException as exc:
        raise NotificationFailed(f"slack unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 300:
        raise NotificationFailed(f"slack answered {response.status_code}")
    log.info("override.notified", override_id=override.pk, channel="slack")
    return True
