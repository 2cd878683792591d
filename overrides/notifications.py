"""Telling the approvers that a request waits for them.

A narrow adapter: it posts to the Slack incoming webhook in
``settings.SLACK_WEBHOOK_URL`` when one is set and only logs otherwise;
the Celery task retries it a few times. What it lacks is what the alerts
app does (durable deliveries, a sweeper, paging, the e-mail fallback): a
submission whose notification task is lost (broker down at commit) tells
nobody but the log. Handing the message to ``alerts.services.notify`` (or
``alert_trigger`` on the "page" route, keyed by the request, resolved when
it settles) closes that gap; it was left to the merge by agreement, so the
two apps' owners see it happen. "The approvers" is the channel where the
Approver role listens until the incidents app can name the on-call Approver.
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
