"""PagerDuty's side of an acknowledgement: its v3 webhooks, coming in.

Our pages open PagerDuty incidents through the Events API, each with the
notification's ``dedup_key``. Whoever is paged often acknowledges in the
PagerDuty app rather than through our link; PagerDuty then sends a v3
webhook (``incident.acknowledged``) whose incident carries that key as
``incident_key``, and this module stops our escalation the same way the
link does.

A delivery is trusted only with a valid ``X-PagerDuty-Signature``: one or
more ``v1=<hex>`` HMAC-SHA256 digests of the raw body under the webhook
subscription's secret (PAGERDUTY_WEBHOOK_SECRET), compared in constant
time. Everything else PagerDuty sends is answered 2xx and ignored, so that
it does not retry what we do not need.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model

from incidents.models import PageNotification
from incidents.services.paging import page_acknowledge

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 256 * 1024
SIGNATURE_HEADER = "X-PagerDuty-Signature"


class WebhookRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    event_type: str
    result: str  # "acknowledged", "already acknowledged", "ignored: ..."


def signature_valid(body: bytes, header: str, secret: str) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    offered = [
        part.strip().removeprefix("v1=")
        for part in header.split(",")
        if part.strip().startswith("v1=")
    ]
    # Every offered digest is compared, so the time taken says nothing of
    # which one (if any) matched.
    matches = [hmac.compare_digest(expected, digest) for digest in offered]
    return any(matches)


def _acknowledger(agent: dict, note: PageNotification):
    """Our user for PagerDuty's acknowledging agent, matched by e-mail; None
    when nobody (or more than one staff account) has that address."""
    email = (agent or {}).get("email") or ""
    if not email:
        return None
    if note.person is not None and note.person.email.lower() == email.lower():
        return note.person
    users = list(
        get_user_model().objects.filter(
            email__iexact=email, is_active=True, is_staff=True
        )[:2]
    )
    return users[0] if len(users) == 1 else None


def webhook_receive(*, body: bytes, signature: str) -> WebhookOutcome:
    """Check and apply one delivery; WebhookRefused says why it was not."""
    secret = settings.PAGERDUTY_WEBHOOK_SECRET
    if not secret:
        raise WebhookRefused(404, "PagerDuty webhooks are not configured")
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRefused(413, "body too large")
    if not signature or not signature_valid(body, signature, secret):
        log.warning("incidents.pagerduty_signature_refused", size=len(body))
        raise WebhookRefused(401, "bad or missing signature")
    try:
        event = json.loads(body)["event"]
        event_id, event_type = str(event["id"]), str(event["event_type"])
        data = event.get("data") or {}
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookRefused(400, f"not a PagerDuty v3 event: {exc}") from None

    def outcome(result: str) -> WebhookOutcome:
        log.info(
            "incidents.pagerduty_webhook",
            event_id=event_id,
            event_type=event_type,
            result=result,
        )
        return WebhookOutcome(event_id, event_type, result)

    if event_type != "incident.acknowledged":
        return outcome("ignored: not an acknowledgement")
    key = str(data.get("incident_key") or "")
    note = (
        PageNotification.objects.select_related("person", "page")
        .filter(dedup_key=key, channel="pagerduty")
        .first()
        if key
        else None
    )
    if note is None:
        return outcome("ignored: not one of our pages")
    user = _acknowledger(event.get("agent") or {}, note)
    _, stopped = page_acknowledge(
        page_id=note.page_id,
        user=user,
        # The notification counts as answered only by the person it paged;
        # nobody else is recorded as them.
        notification_id=note.pk if user is not None and user == note.person else None,
        via="pagerduty",
    )
    return outcome("acknowledged" if stopped else "already acknowledged")
