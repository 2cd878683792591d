"""Reminders ahead of waiver deadlines and rotation dates; escalations after."""

from dataclasses import dataclass, field
from datetime import datetime

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from security.roles import SECURITY_ADMIN
from waivers import alerting
from waivers.models import Reminder, Waiver
from waivers.selectors import secret_states

log = structlog.get_logger(__name__)


@dataclass
class ReminderReport:
    sent: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    already_sent: int = 0
    failed: list[str] = field(default_factory=list)


def _security_admin_emails() -> list[str]:
    return sorted(
        get_user_model()
        .objects.filter(groups__name=SECURITY_ADMIN, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )


def _send_once(
    *, subject, kind, due_on, recipients, title, body, escalate, report
) -> None:
    """Send one reminder unless it was sent before.

    1. Insert the Reminder row (subject, kind, due date): its unique
       constraint makes a repeated or concurrent run wait for this one and
       then fail to insert, so it is skipped.
    2. Send in the same transaction: if sending fails, the row goes with it
       and the next run tries again.
    """
    recipients = sorted(set(recipients))
    try:
        with transaction.atomic():
            Reminder.objects.create(
                subject=subject,
                kind=kind,
                due_on=due_on,
                recipients=", ".join(recipients),
                escalated=escalate,
            )
            if recipients:
                send_mail(title, body, None, recipients)
    except IntegrityError:
        report.already_sent += 1
        return
    except OSError as exc:
        # An SMTP failure: nothing is recorded, so the next run retries.
        log.warning("waiver.reminder_failed", subject=subject, error=str(exc))
        report.failed.append(subject)
        return
    if escalate:
        try:
            alerting.escalate(key=f"waivers:{subject}", summary=title, details={})
        except Exception:
            # The e-mail went and is recorded; a broken alert channel must
            # not stop the other reminders of this run.
            log.exception("waiver.alert_failed", subject=subject)
        report.escalated.append(subject)
    else:
        report.sent.append(subject)
    log.info("waiver.reminder_sent", subject=subject, kind=kind, due_on=str(due_on))


def _lead_kind(days_left: int) -> str | None:
    """The reminder for ``days_left``: the nearest lead time it is within."""
    within = [d for d in settings.WAIVER_REMINDER_DAYS if days_left <= d]
    return f"due_in_{min(within)}" if within else None


def reminders_send(*, now: datetime | None = None) -> ReminderReport:
    """Remind owners ahead of waiver deadlines and rotation dates; escalate when passed.

    Safe to run any number of times a day: each reminder goes out once per
    subject, lead time and due date. An escalation goes to the owner and the
    Security admins by e-mail and, where the alerts app is installed, opens
    an alert; it is resolved once the waiver is closed or its secret rotated.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    report = ReminderReport()
    admins = _security_admin_emails()
    overdue_subjects = set()

    for waiver in Waiver.objects.open().select_related("owner"):
        subject = f"waiver:{waiver.reference}"
        days = waiver.days_to_deadline(today)
        owner = [waiver.owner.email] if waiver.owner.email else []
        if days < 0:
            overdue_subjects.add(subject)
            _send_once(
                subject=subject,
                kind="overdue",
                due_on=waiver.deadline,
                recipients=owner + admins,
                title=f"Waiver {waiver.reference} is past its deadline",
                body=_waiver_body(waiver, days),
                escalate=True,
                report=report,
            )
        elif kind := _lead_kind(days):
            _send_once(
                subject=subject,
                kind=kind,
                due_on=waiver.deadline,
                recipients=owner or admins,
                title=f"Waiver {waiver.reference} is due in {days} days",
                body=_waiver_body(waiver, days),
                escalate=False,
                report=report,
            )

    for state in secret_states(now=now):
        if state.rotation_due is None:
            continue
        subject = f"secret:{state.spec.name}"
        due_on = timezone.localdate(state.rotation_due)
        days = (due_on - today).days
        team = settings.SECRET_OWNER_EMAILS.get(state.spec.owner)
        owner = [team] if team else []
        if state.overdue and not state.waived:
            overdue_subjects.add(subject)
            _send_once(
                subject=subject,
                kind="overdue",
                due_on=due_on,
                recipients=owner + admins,
                title=f"{state.spec.name} is overdue for rotation",
                body=_secret_body(state, days),
                escalate=True,
                report=report,
            )
        elif not state.overdue and (kind := _lead_kind(days)):
            _send_once(
                subject=subject,
                kind=kind,
                due_on=due_on,
                recipients=owner or admins,
                title=f"{state.spec.name} is due for rotation in {days} days",
                body=_secret_body(state, days),
                escalate=False,
                report=report,
            )

    _resolve_escalations(overdue_subjects, now=now, report=report)
    return report


def _resolve_escalations(overdue_subjects, *, now, report) -> None:
    """Close the alerts of escalations whose waiver or secret is fine again."""
    for reminder in Reminder.objects.filter(
        escalated=True, resolved_at__isnull=True
    ).exclude(subject__in=overdue_subjects):
        alerting.resolve(key=f"waivers:{reminder.subject}")
        reminder.resolved_at = now
        reminder.save(update_fields=["resolved_at"])
        report.resolved.append(reminder.subject)


def _waiver_body(waiver: Waiver, days: int) -> str:
    when = (
        f"Its deadline {waiver.deadline} passed {-days} day(s) ago."
        if days < 0
        else f"Its deadline is {waiver.deadline}, in {days} day(s)."
    )
    return (
        f"Waiver {waiver.reference}: {waiver.item}\n"
        f"Risk: {waiver.risk}. Status: {waiver.get_status_display()}. "
        f"Owner: {waiver.owner.get_username()}.\n{when}\n\n"
        "Close the gap and close the waiver in the admin, or ask for a new "
        "waiver with a new deadline (it needs approval again).\n"
    )


def _secret_body(state, days: int) -> str:
    when = (
        f"Its rotation was due {-days} day(s) ago."
        if days < 0
        else f"It is due for rotation in {days} day(s)."
    )
    return (
        f"{state.spec.name}: {state.spec.title}\n"
        f"Owner: {state.spec.owner}. Rotated every {state.spec.rotation_days} "
        f"days; current value in use since {state.value_since:%Y-%m-%d}.\n"
        f"{when}\n\nHow: {state.spec.how_to_rotate}\n"
        f"Procedure: docs/runbook.md, Secret rotation, {state.spec.runbook_heading}.\n"
    )
