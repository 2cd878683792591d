"""Escalations to the alerts app, when it is installed.

The alerts app (PagerDuty, Slack, e-mail fallback) is not part of every
deployment of this branch; where it is missing, escalations still reach
people by e-mail (waivers.services.reminders) and this logs that no
alert was opened. Waiver escalations go to the "chat" route at warning
severity: a passed deadline is a debt to settle in working hours, not a
page in the night.
"""

import structlog
from django.apps import apps

log = structlog.get_logger(__name__)


def escalate(*, key: str, summary: str, details: dict) -> bool:
    """Open (or refresh) the alert ``key``; False when there is no alerts app."""
    if not apps.is_installed("alerts"):
        log.info("waiver.alert_skipped", key=key, reason="alerts app not installed")
        return False
    from alerts.services import alert_trigger

    alert_trigger(
        key=key,
        summary=summary,
        severity="warning",
        details=details,
        source="waivers",
        route="chat",
    )
    return True


def resolve(*, key: str) -> bool:
    if not apps.is_installed("alerts"):
        return False
    from alerts.services import alert_resolve

    alert_resolve(key=key)
    return True
