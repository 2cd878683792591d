"""Telling the approvers that a request waits for them.

The on-call Approver (the incidents app's rotations) hears on every channel
their on-call profile reaches; when nobody is on call, or nobody can be
reached, the team's chat channel hears instead. Messages are deliveries of
the alerts app: written in the submitting transaction, sent after commit,
retried, and falling back to e-mail, so a broker that is down delays a
notification but never loses it.
"""

import structlog
from django.conf import settings
from django.urls import reverse

from alerts.channels import Message
from alerts.services import Target, notify, route_targets
from finance.money import format_amount
from incidents.selectors import contact_reach, oncall_person
from security.roles import APPROVER

log = structlog.get_logger(__name__)

# Channels tried for the on-call Approver, each one they can be reached on.
PERSONAL_CHANNELS = ["pagerduty", "slack", "email"]


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


def notify_approvers(override) -> list[Target]:
    """Tell the on-call Approver, or the team's chat, that ``override`` waits.

    Must run in the transaction that submits the request; returns the
    targets that were queued.
    """
    person = oncall_person(role=APPROVER)
    reaches = [contact_reach(person, channel) for channel in PERSONAL_CHANNELS]
    targets = [Target(r.channel, r.target) for r in reaches if r is not None]
    if not targets:
        targets = route_targets(settings.OVERRIDES_NOTIFY_ROUTE)
    message = Message(
        summary=message_text(override),
        severity="warning",
        source="overrides",
        key=f"override:{override.pk}",
        action="notify",
        component="overrides",
        details={"override_id": override.pk, "review_url": review_url(override)},
    )
    for target in targets:
        notify(channel=target.channel, target=target.address, message=message)
    log.info(
        "override.approvers_notified",
        override_id=override.pk,
        oncall_user_id=person.pk if person else None,
        channels=[target.channel for target in targets],
    )
    return targets
