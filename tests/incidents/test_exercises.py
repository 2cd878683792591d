"""A tabletop exercise, run end to end through the admin."""

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from incidents.jobs import incidents_tick
from incidents.models import Exercise, Scenario
from incidents.services.exercises import (
    ExerciseError,
    exercise_complete,
    exercise_start,
)
from security.roles import INCIDENT_COMMANDER, VIEWER
from tests.conftest import log_in_verified
from tests.factories import make_oncall_person, make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2026, 3, 4, 14, 0, tzinfo=dt.UTC)


def _inline_data(response) -> dict:
    """The POST a browser would send back for the page's inline formsets."""
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, field in formset.management_form.fields.items():
            key = formset.management_form.add_prefix(name)
            data[key] = formset.management_form.initial.get(name, field.initial)
        for form in formset.initial_forms:
            for name in form.fields:
                value = form[name].value()
                if value is not None:
                    data[form.add_prefix(name)] = getattr(value, "pk", value)
    return data


def _post(client, url, data=None):
    response = client.post(url, data or {})
    assert response.status_code == 302, response.content[:3000]
    return response


@pytest.fixture
def facilitator(client, roles):
    user = make_staff(roles=[INCIDENT_COMMANDER])
    log_in_verified(client, user)
    return user


def test_an_exercise_runs_from_plan_to_completed_record(
    client, facilitator, receiver, committed
):
    scenario = Scenario.objects.get(slug="payouts-stuck")
    players = [
        make_oncall_person("player1", email="player1@example.com"),
        make_oncall_person("player2", email="player2@example.com"),
    ]
    add = reverse("admin:incidents_exercise_add")
    data = _inline_data(client.get(add))
    data.update(
        {
            "scenario": scenario.pk,
            "title": "Q1 tabletop",
            "facilitator": facilitator.pk,
            "inject_delivery": "facilitator",
            "participants-TOTAL_FORMS": "2",
            "participants-0-user": players[0].pk,
            "participants-0-role": "incident commander",
            "participants-1-user": players[1].pk,
            "participants-1-role": "approver",
        }
    )
    _post(client, add, data)
    exercise = Exercise.objects.get()

    def url(name):
        return reverse(f"admin:incidents_exercise_{name}", args=[exercise.pk])

    _post(client, url("start"))
    for _ in scenario.injects.all():
        with committed():
            _post(client, url("inject"))
    _post(client, url("note"), {"kind": "decision", "text": "Replay the webhooks."})
    _post(
        client,
        url("note"),
        {"kind": "finding", "text": "Nobody knew who rotates the secret."},
    )
    change = reverse("admin:incidents_exercise_change", args=[exercise.pk])
    data = _inline_data(client.get(change))
    data.update(
        {
            "scenario": scenario.pk,
            "title": "Q1 tabletop",
            "facilitator": facilitator.pk,
            "inject_delivery": "facilitator",
            "action_items-TOTAL_FORMS": "1",
            "action_items-0-title": "Name who rotates the secret out of hours",
            "action_items-0-owner": players[0].pk,
            "action_items-0-due_on": "2026-04-01",
            "action_items-0-status": "open",
        }
    )
    _post(client, change, data)
    _post(client, url("complete"), {"outcome": "Declared in 4 minutes; one gap."})

    exercise.refresh_from_db()
    assert exercise.status == Exercise.Status.COMPLETED
    assert exercise.completed_at is not None
    assert exercise.outcome == "Declared in 4 minutes; one gap."
    assert [p.role for p in exercise.participants.all()] == [
        "incident commander",
        "approver",
    ]
    assert exercise.deliveries.count() == scenario.injects.count() == 4
    assert sorted(exercise.notes.values_list("kind", flat=True)) == [
        "decision",
        "finding",
    ]
    (item,) = exercise.action_items.all()
    assert (item.owner, str(item.due_on)) == (players[0], "2026-04-01")
    # Each inject reached each player, marked as play.
    assert len(mail.outbox) == 8
    assert mail.outbox[0].subject.startswith("[opsadmin NOTICE] [EXERCISE] Q1 tabletop")


def _planned(facilitator, **fields):
    exercise = Exercise.objects.create(
        scenario=Scenario.objects.get(slug="leaked-api-key"),
        title="Key leak drill",
        facilitator=facilitator,
        **fields,
    )
    exercise.participants.create(user=make_staff(), role="incident commander")
    return exercise


def test_completing_is_refused_while_the_record_has_gaps(facilitator):
    exercise = _planned(facilitator)
    exercise_start(exercise_id=exercise.pk, actor=facilitator)

    with pytest.raises(ExerciseError) as refused:
        exercise_complete(exercise_id=exercise.pk, outcome="", actor=facilitator)

    assert str(refused.value) == (
        "the record is incomplete: 4 inject(s) not delivered; no decision "
        "recorded; no finding recorded; no outcome"
    )
    exercise.refresh_from_db()
    assert exercise.status == Exercise.Status.RUNNING


def test_the_admin_says_what_is_missing(client, facilitator):
    exercise = _planned(facilitator)
    exercise_start(exercise_id=exercise.pk, actor=facilitator)

    response = client.post(
        reverse("admin:incidents_exercise_complete", args=[exercise.pk]),
        {"outcome": "went fine"},
    )

    assert b"4 inject(s) not delivered" in response.content
    exercise.refresh_from_db()
    assert exercise.completed_at is None


def test_scheduled_injects_arrive_at_their_offsets(facilitator):
    exercise = _planned(facilitator, inject_delivery="scheduled")
    with time_machine.travel(T0, tick=False):
        exercise_start(exercise_id=exercise.pk, actor=facilitator)

    # leaked-api-key: injects at +0, +10, +30 and +60 minutes.
    for minutes, delivered in [(0, 1), (9, 1), (10, 2), (45, 3), (60, 4), (90, 4)]:
        with time_machine.travel(T0 + dt.timedelta(minutes=minutes), tick=False):
            incidents_tick()
        assert exercise.deliveries.count() == delivered, minutes
    assert exercise.deliveries.filter(delivered_by__isnull=True).count() == 4


def test_the_admin_index_shows_the_last_completed_exercise(client, facilitator):
    index = reverse("admin:index")
    assert b"No tabletop exercise has been completed yet" in client.get(index).content

    Exercise.objects.create(
        scenario=Scenario.objects.get(slug="provider-outage"),
        title="Outage drill",
        facilitator=facilitator,
        status="completed",
        completed_at=dt.datetime(2026, 2, 11, 15, 0, tzinfo=dt.UTC),
        outcome="ok",
    )

    content = client.get(index).content
    assert b"Last tabletop exercise completed on <strong>2026-02-11</strong>" in content
    assert b"Outage drill" in content


def test_the_changelist_shows_each_exercise_with_its_outcome(client, facilitator):
    Exercise.objects.create(
        scenario=Scenario.objects.get(slug="provider-outage"),
        title="Outage drill",
        facilitator=facilitator,
        status="completed",
        completed_at=dt.datetime(2026, 2, 11, 15, 0, tzinfo=dt.UTC),
        outcome="Declared in 3 minutes; the approver had no contact.",
    )

    response = client.get(reverse("admin:incidents_exercise_changelist"))

    assert b"Declared in 3 minutes; the approver had no contact." in response.content


def test_a_viewer_sees_exercises_but_runs_none(client, roles):
    exercise = _planned(make_staff())
    log_in_verified(client, make_staff(roles=[VIEWER]))

    assert client.get(reverse("admin:index")).status_code == 200
    start = reverse("admin:incidents_exercise_start", args=[exercise.pk])
    assert client.post(start).status_code == 403
