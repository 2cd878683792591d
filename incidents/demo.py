"""Demo data for the incidents app (the ``seed_demo`` hook).

Staffs the seeded rotations with demo people, and leaves one resolved
incident with its review and one completed tabletop exercise, so every
page of the app has something to show. The demo people are accounts that
cannot log in (no password, not staff): they exist to be on call and to
be paged; their contact is an e-mail address, and one has none at all so
that the findings show. Past records are written as rows with their
times, not replayed through the services, which would page people now.
Running it twice adds nothing. Refused in production.
"""

from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from incidents.models import (
    ActionItem,
    Exercise,
    ExerciseNote,
    Incident,
    IncidentLink,
    InjectDelivery,
    OnCallProfile,
    Page,
    PageNotification,
    Participant,
    Review,
    Rotation,
    RotationMember,
    Scenario,
    Severity,
    TimelineEntry,
)
from incidents.services.paging import freeze_policy

# username, full name, e-mail (empty: no contact at all)
PEOPLE = [
    ("anna.oncall", "Anna Berg", "anna.oncall@example.com"),
    ("ben.oncall", "Ben Okafor", "ben.oncall@example.com"),
    ("chen.oncall", "Chen Li", "chen.oncall@example.com"),
    ("dana.ic", "Dana Weiss", "dana.ic@example.com"),
    ("emil.ic", "Emil Novak", "emil.ic@example.com"),
    ("frida.approver", "Frida Lund", "frida.approver@example.com"),
    ("gus.approver", "Gus Moreau", ""),
    ("hana.manager", "Hana Sato", "hana.manager@example.com"),
]
ROTATIONS = {
    "Primary on-call": ["anna.oncall", "ben.oncall", "chen.oncall"],
    "Secondary on-call": ["ben.oncall", "chen.oncall", "anna.oncall"],
    "Incident commanders": ["dana.ic", "emil.ic"],
    "Approvers": ["frida.approver", "gus.approver"],
    "Engineering management": ["hana.manager"],
}
INCIDENT_TITLE = "Payouts stuck at the provider after a webhook secret rotation"
EXERCISE_TITLE = "Q1 tabletop: payouts stuck for hours"


def seed_demo(context=None, **kwargs) -> list[str]:
    """Add the demo's on-call people, a resolved incident and a completed
    exercise. Takes the seed command's context (``now``, ``stdout``) or
    the same as keywords; returns the lines it printed."""
    if settings.PRODUCTION:
        raise RuntimeError("incidents demo data is refused in production")
    now = kwargs.get("now") or getattr(context, "now", None) or timezone.now()
    stdout = kwargs.get("stdout") or getattr(context, "stdout", None)
    with transaction.atomic():
        people = _people()
        _staff_rotations(people)
        lines = [f"incidents: {len(people)} on-call demo people in 5 rotations"]
        if not Incident.objects.filter(title=INCIDENT_TITLE).exists():
            _resolved_incident(people, now)
            lines.append("incidents: one resolved Sev2 incident with its review")
        if not Exercise.objects.filter(title=EXERCISE_TITLE).exists():
            _completed_exercise(people, now)
            lines.append("incidents: one completed tabletop exercise")
    for line in lines:
        if stdout is not None:
            stdout.write(line + "\n")
    return lines


def _people() -> dict:
    User = get_user_model()
    people = {}
    for username, full_name, email in PEOPLE:
        first, last = full_name.split(" ", 1)
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": email},
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        OnCallProfile.objects.get_or_create(user=user, defaults={"email": email})
        people[username] = user
    return people


def _staff_rotations(people: dict) -> None:
    for name, usernames in ROTATIONS.items():
        rotation = Rotation.objects.filter(name=name).first()
        if rotation is None or rotation.members.exists():
            continue
        for position, username in enumerate(usernames, start=1):
            RotationMember.objects.create(
                rotation=rotation, user=people[username], position=position
            )


def _entry(incident, at: datetime, kind: str, text: str, actor=None) -> None:
    TimelineEntry.objects.create(
        incident=incident,
        at=at,
        kind=kind,
        text=text,
        actor=actor,
        actor_name=actor.get_username() if actor else "system",
    )


def _resolved_incident(people: dict, now: datetime) -> None:
    sev2 = Severity.objects.get(level=2)
    declared = now - timedelta(days=12, hours=3)
    anna, dana = people["anna.oncall"], people["dana.ic"]
    incident = Incident.objects.create(
        title=INCIDENT_TITLE,
        summary="180 EUR payouts stayed processing: the provider's final "
        "webhooks were rejected with a bad signature after the signing secret "
        "was rotated on our side only.",
        customer_impact="180 customers waited up to 9 hours for their payouts; "
        "11 payouts passed the 24-hour SLA.",
        severity=sev2,
        status=Incident.Status.RESOLVED,
        commander=dana,
        declared_by=anna,
        declared_at=declared,
        identified_at=declared + timedelta(minutes=35),
        mitigated_at=declared + timedelta(hours=2),
        resolved_at=declared + timedelta(hours=5),
        last_update_at=declared + timedelta(hours=5),
    )
    page = Page.objects.create(
        incident=incident,
        severity=sev2,
        policy=freeze_policy(sev2),
        repeats=sev2.escalation_repeats,
        status=Page.Status.ACKNOWLEDGED,
        next_index=1,
        started_at=declared,
        ended_at=declared + timedelta(minutes=4),
        acknowledged_at=declared + timedelta(minutes=4),
        acknowledged_by=anna,
        acknowledged_via="link",
    )
    PageNotification.objects.create(
        page=page,
        index=0,
        step_position=1,
        rotation_name="Primary on-call",
        person=anna,
        person_name=anna.get_username(),
        channel="email",
        outcome=PageNotification.Outcome.SENT,
        wait_minutes=10,
        notified_at=declared,
        acknowledged_at=declared + timedelta(minutes=4),
    )
    case_id = _a_stuck_case_id()
    if case_id is not None:
        IncidentLink.objects.create(
            incident=incident,
            target_type="stuck.stuckcase",
            target_id=str(case_id),
            label="one of the 180 stuck payout cases",
            created_by=anna,
            created_at=declared + timedelta(minutes=10),
        )
        _entry(
            incident,
            declared + timedelta(minutes=10),
            TimelineEntry.Kind.LINK,
            f"Linked stuck.stuckcase {case_id}: one of the 180 stuck payout cases",
            anna,
        )
    Kind = TimelineEntry.Kind
    for minutes, kind, text, actor in [
        (0, Kind.DECLARED, "Declared Sev2 by anna.oncall; commander dana.ic.", anna),
        (
            0,
            Kind.PAGE,
            "Step 1: paged anna.oncall (e-mail) on call in Primary "
            "on-call; next step in 10 min.",
            None,
        ),
        (
            4,
            Kind.ACKNOWLEDGED,
            "anna.oncall acknowledged the page via link on "
            "e-mail, 4 min after paging started; escalation stopped.",
            anna,
        ),
        (
            35,
            Kind.STATUS,
            "Status investigating → identified. Webhooks rejected "
            "since the signing-secret rotation at 07:00.",
            dana,
        ),
        (
            40,
            Kind.DECISION,
            "Ask the provider to replay every webhook since 07:00 "
            "rather than marking payouts paid by hand.",
            dana,
        ),
        (
            120,
            Kind.STATUS,
            "Status identified → mitigated. Secret fixed; replay under way.",
            dana,
        ),
        (
            300,
            Kind.STATUS,
            "Status mitigated → resolved. 169 paid, 11 failed and "
            "returned to wallets; ledger checked.",
            dana,
        ),
    ]:
        _entry(incident, declared + timedelta(minutes=minutes), kind, text, actor)
    review = Review.objects.create(
        incident=incident,
        summary="A secret rotated on one side only stopped every final payout "
        "webhook for five hours.",
        root_cause="The webhook signing secret was rotated in our settings "
        "before the provider had the new one; the runbook had no step for it.",
        contributing_factors="Rejected webhooks alerted nobody; stuck detection "
        "paged only after six hours.",
        went_well="Acknowledged in 4 minutes; the replay fixed every payout "
        "without a manual posting.",
        went_badly="Nobody noticed the rejections for five hours.",
        facilitator=dana,
        held_on=(declared + timedelta(days=2)).date(),
        completed_at=declared + timedelta(days=2),
    )
    for title, owner, days, status in [
        (
            "Alert on webhook signature rejections above 1% for 10 minutes",
            "anna.oncall",
            14,
            ActionItem.Status.DONE,
        ),
        (
            "Runbook: rotate the webhook secret with both keys valid for a day",
            "dana.ic",
            21,
            ActionItem.Status.OPEN,
        ),
    ]:
        ActionItem.objects.create(
            review=review,
            title=title,
            owner=people[owner],
            due_on=(declared + timedelta(days=days)).date(),
            status=status,
        )


def _a_stuck_case_id() -> int | None:
    """A stuck case of the demo platform to link, when the stuck app has one."""
    try:
        model = apps.get_model("stuck", "StuckCase")
    except LookupError:
        return None
    return model.objects.order_by("pk").values_list("pk", flat=True).first()


def _completed_exercise(people: dict, now: datetime) -> None:
    scenario = Scenario.objects.get(slug="payouts-stuck")
    started = now - timedelta(days=20, hours=2)
    exercise = Exercise.objects.create(
        scenario=scenario,
        title=EXERCISE_TITLE,
        facilitator=people["dana.ic"],
        scheduled_for=started,
        status=Exercise.Status.COMPLETED,
        started_at=started,
        completed_at=started + timedelta(hours=1),
        outcome="The team declared at Sev2 within 4 minutes and found the "
        "rejected webhooks in 12. Nobody knew who may rotate the signing "
        "secret out of hours, and the Approver rotation had a person with no "
        "contact.",
        created_at=started - timedelta(days=7),
    )
    for username, role in [
        ("emil.ic", "incident commander"),
        ("ben.oncall", "on-call engineer"),
        ("frida.approver", "approver"),
        ("hana.manager", "observer"),
    ]:
        Participant.objects.create(exercise=exercise, user=people[username], role=role)
    for inject in scenario.injects.order_by("position"):
        InjectDelivery.objects.create(
            exercise=exercise,
            inject=inject,
            delivered_at=started + timedelta(minutes=inject.offset_minutes),
            delivered_by=people["dana.ic"],
        )
    Kind = ExerciseNote.Kind
    for minutes, kind, text in [
        (4, Kind.DECISION, "Declared Sev2 and linked the stuck cases."),
        (
            20,
            Kind.DECISION,
            "Asked the provider to replay webhooks; no manual status changes.",
        ),
        (
            35,
            Kind.FINDING,
            "Nobody knew who may rotate the webhook signing secret out of hours.",
        ),
        (
            50,
            Kind.FINDING,
            "gus.approver has no contact: the Approver step would reach nobody.",
        ),
    ]:
        ExerciseNote.objects.create(
            exercise=exercise,
            kind=kind,
            text=text,
            author=people["dana.ic"],
            at=started + timedelta(minutes=minutes),
        )
    for title, owner, days in [
        (
            "Name who rotates the webhook secret out of hours in the runbook",
            "dana.ic",
            14,
        ),
        ("Give gus.approver an on-call contact", "emil.ic", 7),
    ]:
        ActionItem.objects.create(
            exercise=exercise,
            title=title,
            owner=people[owner],
            due_on=(started + timedelta(days=days)).date(),
        )
