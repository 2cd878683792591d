"""Declaring and running an incident; its timeline, links and review."""

import datetime as dt

import pytest
import time_machine
from django.core import mail

from incidents.models import ActionItem, Incident, Rotation, Severity
from incidents.selectors import link_url
from incidents.services.incidents import (
    IncidentError,
    incident_declare,
    incident_link_add,
    incident_post,
    incident_set_status,
    incidents_remind_updates,
    review_complete,
    review_open,
)
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def _declare(**fields):
    values = {"title": "Deposits pending", "level": 3}
    values.update(fields)
    with time_machine.travel(T0, tick=False):
        return incident_declare(**values)


def test_the_on_call_incident_commander_takes_a_declared_incident(staffed):
    incident = _declare(declared_by=make_user("reporter"))

    assert incident.commander == staffed["Incident commanders"]
    assert incident.timeline.first().text == (
        "Declared Sev3 by reporter; commander p3."
    )


def test_the_declarer_commands_when_nobody_is_on_call():
    reporter = make_user("reporter")

    incident = _declare(declared_by=reporter)

    assert incident.commander == reporter


def test_an_update_restarts_the_update_clock_and_can_move_the_status():
    incident = _declare()
    author = make_user("author")

    with time_machine.travel(T0 + dt.timedelta(minutes=20), tick=False):
        incident_post(
            incident_id=incident.pk,
            kind="update",
            text="Provider confirms a queue backlog.",
            status="identified",
            actor=author,
        )

    incident.refresh_from_db()
    assert incident.status == "identified"
    assert incident.identified_at == incident.last_update_at
    assert incident.last_update_at == T0 + dt.timedelta(minutes=20)
    kinds = list(incident.timeline.values_list("kind", "actor_name"))
    assert kinds[-2:] == [("update", "author"), ("status", "author")]


def test_resolving_records_when_and_a_reopen_clears_it():
    incident = _declare()

    incident_set_status(incident_id=incident.pk, status="resolved", actor=None)
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    incident_set_status(incident_id=incident.pk, status="investigating", actor=None)

    incident.refresh_from_db()
    assert incident.resolved_at is None


def test_a_record_of_an_app_not_installed_yet_can_be_linked():
    incident = _declare()

    link = incident_link_add(
        incident_id=incident.pk,
        target_type="Reconciliation.Ticket",
        target_id="42",
        label="EUR clearing off by 1,240.50",
        actor=None,
    )

    assert (link.target_type, link.target_id) == ("reconciliation.ticket", "42")
    assert link_url(link.target_type, link.target_id) is None
    assert incident.timeline.last().text == (
        "Linked reconciliation.ticket 42: EUR clearing off by 1,240.50"
    )


def test_a_link_to_an_installed_model_points_at_its_admin_page():
    assert link_url("stuck.stuckcase", "7") == "/admin/stuck/stuckcase/7/change/"
    assert link_url("overrides.overriderequest", "3") == (
        "/admin/overrides/overriderequest/3/change/"
    )


def test_a_link_needs_a_model_label_and_an_id():
    incident = _declare()

    with pytest.raises(IncidentError, match=r"app_label\.model"):
        incident_link_add(
            incident_id=incident.pk, target_type="ticket", target_id="1", actor=None
        )


def test_linking_the_same_record_twice_keeps_one_link():
    incident = _declare()
    for _ in range(2):
        incident_link_add(
            incident_id=incident.pk,
            target_type="overrides.overriderequest",
            target_id="5",
            actor=None,
        )

    assert incident.links.count() == 1


def test_a_review_completes_only_with_its_summary_root_cause_and_incident_resolved():
    incident = _declare()
    review = review_open(incident_id=incident.pk, actor=None)

    with pytest.raises(IncidentError, match="summary, root cause, the incident"):
        review_complete(review_id=review.pk, actor=None)

    review.summary = "Deposits waited for a provider backlog."
    review.root_cause = "The provider's queue stalled; we had no alert on it."
    review.save()
    ActionItem.objects.create(
        review=review, title="Alert on deposit age", owner=make_user(), due_on=T0.date()
    )
    incident_set_status(incident_id=incident.pk, status="resolved", actor=None)
    review_complete(review_id=review.pk, actor=None)

    review.refresh_from_db()
    assert review.completed_at is not None
    assert incident.timeline.last().text == (
        "Post-incident review completed with 1 action item(s)."
    )


def test_the_commander_is_reminded_once_per_update_interval(
    staffed, receiver, committed
):
    incident = _declare(level=2, commander=staffed["Incident commanders"])
    interval = dt.timedelta(minutes=Severity.objects.get(level=2).update_minutes)

    with time_machine.travel(T0 + interval - dt.timedelta(seconds=1), tick=False):
        assert incidents_remind_updates() == 0
    with time_machine.travel(T0 + interval, tick=False), committed():
        assert incidents_remind_updates() == 1
    with time_machine.travel(T0 + interval + dt.timedelta(minutes=5), tick=False):
        assert incidents_remind_updates() == 0

    (reminder,) = receiver.bodies("/slack/p3")
    assert "is due a status update (every 60 min)" in reminder["text"]
    assert incident.timeline.filter(kind="reminder").count() == 1


def test_a_severity_with_people_to_tell_mails_them_on_declaration(receiver, committed):
    sev1 = Severity.objects.get(level=1)
    sev1.inform_email = "head-of-ops@example.com, compliance@example.com"
    sev1.save()

    with committed():
        incident = _declare(level=1)

    (message,) = mail.outbox
    assert message.to == ["head-of-ops@example.com", "compliance@example.com"]
    assert message.subject == (
        f"[opsadmin NOTICE] Sev1 incident #{incident.pk} declared: Deposits pending"
    )


def test_one_open_incident_per_source_collects_the_repeats():
    first = _declare(source="job", source_key="job:nightly", title="nightly failing")
    again = _declare(source="job", source_key="job:nightly", title="nightly again")

    assert again.pk == first.pk
    assert Incident.objects.count() == 1
    assert first.timeline.last().text == "Happened again: nightly again"


def test_a_resolved_source_incident_lets_the_next_one_open():
    first = _declare(source="job", source_key="job:nightly")
    incident_set_status(incident_id=first.pk, status="resolved", actor=None)

    second = _declare(source="job", source_key="job:nightly")

    assert second.pk != first.pk


def test_the_seeded_rotations_staff_the_roles_other_apps_ask_for():
    roles = dict(Rotation.objects.values_list("name", "role"))

    assert roles["Approvers"] == "Approver"
    assert roles["Incident commanders"] == "Incident commander"
