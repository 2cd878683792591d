"""Scheduled work of the waivers app (entries in CELERY_BEAT_SCHEDULE).

Both are safe to run twice: an observation records each change of value
once, and each reminder is sent once per subject, lead time and due date.
"""

import structlog
from celery import shared_task

from waivers.services.observations import secrets_observe as observe
from waivers.services.reminders import reminders_send as remind

log = structlog.get_logger(__name__)


@shared_task(name="waivers.secrets_observe")
def secrets_observe():
    report = observe(source="task")
    log.info(
        "secrets.observed",
        observed=report.observed,
        rotated=report.rotated,
        rekeyed=len(report.rekeyed),
    )


@shared_task(name="waivers.reminders_send")
def reminders_send():
    report = remind()
    log.info(
        "waiver.reminders_done",
        sent=len(report.sent),
        escalated=len(report.escalated),
        resolved=len(report.resolved),
        already_sent=report.already_sent,
        failed=len(report.failed),
    )
