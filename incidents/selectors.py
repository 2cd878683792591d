"""Reads: who is on call, how to reach them, and what would go wrong.

For other apps::

    from incidents.selectors import oncall_person, oncall_resolve

    approver = oncall_person(role="Approver")        # a User or None, now
    shift = oncall_resolve(rotation, at=some_instant)  # shift.user may be None
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from alerts.channels import channel_module
from incidents.models import (
    EscalationStep,
    Exercise,
    OnCallProfile,
    PageNotification,
    Rotation,
    RotationOverride,
    Severity,
)

CHANNEL_NAMES = {"pagerduty": "PagerDuty", "slack": "Slack", "email": "e-mail"}


@dataclass(frozen=True)
class Shift:
    """Who is on call in a rotation over one stretch of time."""

    rotation: Rotation
    user: AbstractBaseUser | None
    starts_at: datetime | None
    ends_at: datetime | None
    override: RotationOverride | None = None


def _first_handoff_day(rotation: Rotation) -> date:
    ahead = (rotation.handoff_weekday - rotation.starts_on.weekday()) % 7
    return rotation.starts_on + timedelta(days=ahead)


def shift_start(rotation: Rotation, number: int) -> datetime:
    """When shift ``number`` begins (0 is the first), in UTC.

    Counted in local calendar days at the local handoff time, so a handoff
    at 09:00 stays at 09:00 on the wall clock when daylight saving starts or
    ends (and so moves by an hour in UTC).
    """
    day = _first_handoff_day(rotation) + timedelta(days=number * rotation.shift_days)
    local = datetime.combine(day, rotation.handoff_time, tzinfo=rotation.zone)
    return local.astimezone(UTC)


def shift_number(rotation: Rotation, at: datetime) -> int:
    """The number of the shift running at ``at``; negative before the first."""
    local_day = at.astimezone(rotation.zone).date()
    days = (local_day - _first_handoff_day(rotation)).days
    number = days // rotation.shift_days
    # The estimate is off by one around the handoff hour: settle it against
    # the real boundaries, in UTC, the way the shifts themselves are defined.
    while at < shift_start(rotation, number):
        number -= 1
    while at >= shift_start(rotation, number + 1):
        number += 1
    return number


def _members(rotation: Rotation) -> list:
    members = rotation.members.select_related("user").order_by("position", "id")
    return [member.user for member in members]


def _scheduled(rotation: Rotation, number: int, members: list) -> Shift:
    user = members[number % len(members)] if members and number >= 0 else None
    return Shift(
        rotation,
        user,
        shift_start(rotation, number) if number >= 0 else None,
        shift_start(rotation, number + 1) if number >= 0 else None,
    )


def oncall_resolve(rotation: Rotation, at: datetime | None = None) -> Shift:
    """Who is on call in ``rotation`` at the instant ``at`` (default: now).

    An override covering the instant wins (the newest one where several
    overlap); otherwise the members take the shifts in order. Nobody is on
    call before the first shift or in a rotation without members.
    """
    at = at or timezone.now()
    override = (
        rotation.overrides.filter(starts_at__lte=at, ends_at__gt=at)
        .select_related("user")
        .order_by("-created_at", "-id")
        .first()
    )
    if override is not None:
        return Shift(
            rotation, override.user, override.starts_at, override.ends_at, override
        )
    return _scheduled(rotation, shift_number(rotation, at), _members(rotation))


def shifts_upcoming(rotation: Rotation, *, start: datetime, count: int) -> list[Shift]:
    """The scheduled shifts from the one running at ``start`` (no overrides)."""
    members = _members(rotation)
    first = max(shift_number(rotation, start), 0)
    return [_scheduled(rotation, first + n, members) for n in range(count)]


def oncall_person(*, role: str = "", rotation: str = "", at: datetime | None = None):
    """The person on call for a role ("Approver") or a rotation name, or None.

    With a role, the rotations staffing it are asked in name order and the
    first one with somebody on call answers.
    """
    rotations = Rotation.objects.order_by("name")
    if rotation:
        rotations = rotations.filter(name=rotation)
    if role:
        rotations = rotations.filter(role=role)
    for candidate in rotations:
        user = oncall_resolve(candidate, at).user
        if user is not None:
            return user
    return None


@dataclass(frozen=True)
class Reach:
    """How one page reaches one person on one channel (an alerts target)."""

    channel: str
    # An alerts target; "" is the channel's configured default.
    target: str
    # A Slack member to mention when the page goes to the team channel.
    mention: str = ""


def _profile(user) -> OnCallProfile | None:
    return OnCallProfile.objects.filter(user=user).first()


def contact_reach(user, channel: str) -> Reach | None:
    """The way to reach ``user`` on ``channel``, or None when there is none."""
    if user is None or not user.is_active:
        return None
    profile = _profile(user)
    reach = None
    if channel == "pagerduty" and profile and profile.pagerduty_routing_key:
        reach = Reach(channel, profile.pagerduty_routing_key)
    elif channel == "slack" and profile and profile.slack_webhook_url:
        reach = Reach(channel, profile.slack_webhook_url)
    elif channel == "slack" and profile and profile.slack_handle:
        reach = Reach(channel, "", mention=profile.slack_handle)
    elif channel == "email":
        address = (profile.email if profile else "") or user.email
        reach = Reach(channel, address) if address else None
    if reach is None or not channel_module(channel).configured(reach.target):
        return None
    return reach


def contact_findings(user) -> list[str]:
    """What stops a page from reaching ``user`` at all."""
    name = user.get_username()
    if not user.is_active:
        return [f"{name}'s account is inactive"]
    if not any(contact_reach(user, channel) for channel in CHANNEL_NAMES):
        return [f"{name} has no contact (no PagerDuty key, Slack or e-mail)"]
    return []


def rotation_findings(rotation: Rotation, at: datetime | None = None) -> list[str]:
    """Empty rotations, nobody on call, members who cannot be reached."""
    at = at or timezone.now()
    findings = []
    members = _members(rotation)
    if not members:
        findings.append(f"rotation {rotation.name} has no members")
    elif oncall_resolve(rotation, at).user is None:
        findings.append(f"rotation {rotation.name} has nobody on call now")
    for user in dict.fromkeys(members):
        findings += contact_findings(user)
    return findings


def step_findings(step: EscalationStep, at: datetime | None = None) -> list[str]:
    """What would stop this step from reaching anybody right now."""
    at = at or timezone.now()
    prefix = f"{step.severity.name} step {step.position}"
    if step.rotation is not None:
        user = oncall_resolve(step.rotation, at).user
        if user is None:
            return [f"{prefix}: nobody on call in {step.rotation.name}"]
    else:
        user = step.person
    if user is None:
        return [f"{prefix}: names nobody"]
    reachable = [c for c in step.channels if contact_reach(user, c)]
    if not reachable:
        wanted = ", ".join(CHANNEL_NAMES[c] for c in step.channels)
        return [f"{prefix}: {user.get_username()} cannot be reached on {wanted}"]
    return []


def matrix_findings(severity: Severity, at: datetime | None = None) -> list[str]:
    steps = list(
        severity.escalation_steps.select_related("rotation", "person", "severity")
    )
    findings = [f for step in steps for f in step_findings(step, at)]
    if steps and steps[0].wait_minutes > severity.response_minutes:
        findings.append(
            f"{severity.name}: the first step waits {steps[0].wait_minutes} min, "
            f"longer than the {severity.response_minutes} min response time"
        )
    return findings


def escalation_test_findings(test) -> list[str]:
    """What the test showed would fail in a real page.

    Steps that reached nobody (an empty rotation, a person without the
    channel), deliveries that failed, and people who did not acknowledge
    within their step's wait (the step would have timed out).
    """
    page = getattr(test, "page", None)
    if page is None:
        return ["the test never started paging (the severity has no steps)"]
    findings = []
    notes = page.notifications.select_related("delivery").order_by("index", "id")
    for note in notes:
        step = f"step {note.step_position}"
        if note.outcome == PageNotification.Outcome.NOBODY:
            findings.append(f"{step}: nobody on call in {note.rotation_name}")
        elif note.outcome == PageNotification.Outcome.NO_CONTACT:
            findings.append(
                f"{step}: {note.person_name} has no {CHANNEL_NAMES[note.channel]} "
                "contact"
            )
        elif note.delivery is not None and note.delivery.status == "failed":
            findings.append(
                f"{step}: {CHANNEL_NAMES[note.channel]} to {note.person_name} "
                f"failed ({note.delivery.last_error or 'no answer'})"
            )
    answered = {
        (note.index, note.person_id)
        for note in notes
        if note.acknowledged_at is not None
        and note.acknowledged_at
        <= note.notified_at + timedelta(minutes=note.wait_minutes)
    }
    timed_out = {}
    for note in notes:
        if note.outcome != PageNotification.Outcome.SENT:
            continue
        due = note.notified_at + timedelta(minutes=note.wait_minutes)
        if (note.index, note.person_id) not in answered and (
            page.status != page.Status.ACTIVE or timezone.now() >= due
        ):
            timed_out[(note.index, note.person_id)] = (
                f"step {note.step_position}: {note.person_name} did not acknowledge "
                f"within {note.wait_minutes} min (the step would time out)"
            )
    return findings + list(timed_out.values())


def link_url(target_type: str, target_id: str) -> str | None:
    """The admin page of a linked record, when its app is installed."""
    try:
        model = apps.get_model(target_type)
    except (LookupError, ValueError):
        return None
    opts = model._meta
    try:
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change", args=[target_id]
        )
    except NoReverseMatch:
        return None


def exercise_last_completed() -> Exercise | None:
    return (
        Exercise.objects.filter(completed_at__isnull=False)
        .order_by("-completed_at")
        .first()
    )


def absolute_url(path: str) -> str:
    return f"{settings.INCIDENTS_LINK_BASE_URL}{path}"


def incident_url(incident) -> str:
    """The incident's admin page as a link for messages."""
    return absolute_url(reverse("admin:incidents_incident_change", args=[incident.pk]))
