"""Running a tabletop exercise: start, injects, decisions, findings, close.

An exercise is complete only when its record is: every inject delivered,
participants with their parts, at least one decision and one finding, and
an outcome. ``exercise_record_gaps`` says what is still missing.
"""

from datetime import datetime, timedelta

import structlog
from django.db import transaction
from django.utils import timezone

from alerts.channels import Message
from alerts.services import notify
from incidents.models import Exercise, ExerciseNote, InjectDelivery
from incidents.selectors import contact_reach

log = structlog.get_logger(__name__)

Status = Exercise.Status


class ExerciseError(Exception):
    """A step of an exercise that is refused, with the reason."""


def _locked(exercise_id: int) -> Exercise:
    return (
        Exercise.objects.select_for_update(of=("self",))
        .select_related("scenario")
        .get(pk=exercise_id)
    )


def exercise_start(*, exercise_id: int, actor, now: datetime | None = None):
    now = now or timezone.now()
    with transaction.atomic():
        exercise = _locked(exercise_id)
        if exercise.status != Status.PLANNED:
            raise ExerciseError(f"the exercise is {exercise.status}, not planned")
        if not exercise.participants.exists():
            raise ExerciseError("add the participants and their parts first")
        exercise.status = Status.RUNNING
        exercise.started_at = now
        exercise.save(update_fields=["status", "started_at"])
    log.info("incidents.exercise_started", exercise_id=exercise.pk)
    return exercise


def _undelivered(exercise: Exercise):
    delivered = exercise.deliveries.values_list("inject_id", flat=True)
    return exercise.scenario.injects.exclude(pk__in=delivered).order_by(
        "position", "id"
    )


def exercise_deliver_next(
    *, exercise_id: int, actor=None, now: datetime | None = None
) -> InjectDelivery | None:
    """Hand the players the next inject (the facilitator's button)."""
    now = now or timezone.now()
    with transaction.atomic():
        exercise = _locked(exercise_id)
        if exercise.status != Status.RUNNING:
            raise ExerciseError("start the exercise first")
        inject = _undelivered(exercise).first()
        if inject is None:
            return None
        return _deliver(exercise, inject, actor, now)


def _deliver(exercise, inject, actor, now) -> InjectDelivery:
    delivery = InjectDelivery.objects.create(
        exercise=exercise, inject=inject, delivered_at=now, delivered_by=actor
    )
    # The players hear it where they would hear a real page, marked as play.
    for participant in exercise.participants.select_related("user"):
        reach = contact_reach(participant.user, "slack") or contact_reach(
            participant.user, "email"
        )
        if reach is None:
            continue
        notify(
            channel=reach.channel,
            target=reach.target,
            message=Message(
                summary=(f"<@{reach.mention}> " if reach.mention else "")
                + f"[EXERCISE] {exercise.title}, inject {inject.position}: "
                f"{inject.text}",
                severity="info",
                source="opsadmin incidents",
                key=f"exercise.{exercise.pk}.inject.{inject.pk}",
                action="notify",
                component="incidents",
                group="tabletop-exercise",
                details={"exercise": "yes: this is a tabletop exercise"},
                timestamp=now.isoformat(),
            ),
        )
    log.info(
        "incidents.inject_delivered",
        exercise_id=exercise.pk,
        inject=inject.position,
        by_schedule=actor is None,
    )
    return delivery


def exercises_deliver_due(*, now: datetime | None = None) -> int:
    """Deliver the injects of scheduled exercises whose time has come.

    Each exercise is locked while its injects go out (skipping one that
    another pass holds), and an inject is delivered once by the unique
    (exercise, inject) row.
    """
    now = now or timezone.now()
    delivered = 0
    running = Exercise.objects.filter(
        status=Status.RUNNING, inject_delivery=Exercise.Delivery.SCHEDULED
    ).values_list("pk", flat=True)
    for exercise_id in list(running):
        with transaction.atomic():
            exercise = (
                Exercise.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("scenario")
                .filter(pk=exercise_id, status=Status.RUNNING)
                .first()
            )
            if exercise is None:
                continue
            started = exercise.started_at or now
            for inject in _undelivered(exercise):
                if started + timedelta(minutes=inject.offset_minutes) > now:
                    break
                _deliver(exercise, inject, None, now)
                delivered += 1
    return delivered


def exercise_note_add(
    *, exercise_id: int, kind: str, text: str, author, inject=None
) -> ExerciseNote:
    if kind not in ExerciseNote.Kind.values:
        raise ExerciseError(f"unknown kind {kind!r}")
    if not text.strip():
        raise ExerciseError("say what was decided or found")
    with transaction.atomic():
        exercise = _locked(exercise_id)
        if exercise.status != Status.RUNNING:
            raise ExerciseError("decisions and findings are noted while it runs")
        return ExerciseNote.objects.create(
            exercise=exercise,
            kind=kind,
            text=text.strip(),
            author=author,
            inject=inject,
        )


def exercise_record_gaps(exercise: Exercise) -> list[str]:
    """What the exercise's record still lacks before it can be completed."""
    gaps = []
    if exercise.status == Status.PLANNED:
        gaps.append("it has not started")
    if not exercise.participants.exists():
        gaps.append("no participants")
    left = _undelivered(exercise).count()
    if left:
        gaps.append(f"{left} inject(s) not delivered")
    kinds = set(exercise.notes.values_list("kind", flat=True))
    if ExerciseNote.Kind.DECISION not in kinds:
        gaps.append("no decision recorded")
    if ExerciseNote.Kind.FINDING not in kinds:
        gaps.append("no finding recorded")
    return gaps


def exercise_complete(
    *, exercise_id: int, outcome: str, actor, now: datetime | None = None
) -> Exercise:
    """Close the exercise with its outcome; refused while the record has gaps."""
    now = now or timezone.now()
    with transaction.atomic():
        exercise = _locked(exercise_id)
        if exercise.status == Status.COMPLETED:
            raise ExerciseError("the exercise is already completed")
        gaps = exercise_record_gaps(exercise)
        if not outcome.strip():
            gaps.append("no outcome")
        if gaps:
            raise ExerciseError(f"the record is incomplete: {'; '.join(gaps)}")
        exercise.status = Status.COMPLETED
        exercise.completed_at = now
        exercise.outcome = outcome.strip()
        exercise.save(update_fields=["status", "completed_at", "outcome"])
    log.info("incidents.exercise_completed", exercise_id=exercise.pk)
    return exercise
