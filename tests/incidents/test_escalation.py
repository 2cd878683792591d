"""Paging by the escalation matrix, over real HTTP to a loopback receiver
standing in for PagerDuty and Slack."""

import datetime as dt
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail

from alerts.models import Alert, Delivery
from alerts.services import deliveries_sweep
from incidents.models import EscalationStep, Page, PageNotification, Rotation, Severity
from incidents.services.incidents import (
    incident_declare,
    incident_set_severity,
    incident_set_status,
)
from incidents.services.paging import page_acknowledge, pages_advance
from tests.http_receiver import ROUTING_KEY
from tests.incidents.conftest import paged

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# Monday 2 March 2026, 10:00 UTC (11:00 in Berlin): day, mid-shift.
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def _declare(committed, *, level=1, at=T0):
    with time_machine.travel(at, tick=False), committed():
        return incident_declare(title="Payouts failing at the provider", level=level)


def _advance(committed, at):
    with time_machine.travel(at, tick=False), committed():
        return pages_advance()


def test_an_unacknowledged_sev1_page_escalates_on_time_through_each_step(
    staffed, receiver, committed
):
    _declare(committed)
    assert paged(receiver) == [("pagerduty", "PD-p1"), ("slack", "p1")]

    _advance(committed, T0 + 5 * MINUTE - dt.timedelta(seconds=1))
    assert len(paged(receiver)) == 2
    _advance(committed, T0 + 5 * MINUTE)
    assert paged(receiver)[2:] == [("pagerduty", "PD-p2"), ("slack", "p2")]

    _advance(committed, T0 + 10 * MINUTE - dt.timedelta(seconds=1))
    assert len(paged(receiver)) == 4
    _advance(committed, T0 + 10 * MINUTE)
    assert paged(receiver)[4:] == [("pagerduty", "PD-p3"), ("slack", "p3")]
    assert [m.to for m in mail.outbox] == [["p3@example.com"]]

    _advance(committed, T0 + 20 * MINUTE)
    assert paged(receiver)[6:] == [("pagerduty", "PD-p4")]
    assert mail.outbox[-1].to == ["p4@example.com"]

    # Nobody answered the last step within 15 minutes: the policy repeats.
    _advance(committed, T0 + 35 * MINUTE)
    assert paged(receiver)[7:] == [("pagerduty", "PD-p1"), ("slack", "p1")]


def test_each_page_carries_an_acknowledgement_link_and_the_incident(
    staffed, receiver, committed
):
    incident = _declare(committed)

    (event, *_) = receiver.bodies("/pagerduty")
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["summary"] == (
        f"Sev1 incident #{incident.pk}: Payouts failing at the provider (step 1 of 4)"
    )
    details = event["payload"]["custom_details"]
    assert details["acknowledge"].startswith("http://127.0.0.1:8000/incidents/ack/")
    assert details["incident"].endswith(
        f"/admin/incidents/incident/{incident.pk}/change/"
    )
    assert (
        event["dedup_key"] == f"incident.{incident.pk}.page.{incident.pages.get().pk}.0"
    )


def test_the_timeline_records_each_step(staffed, receiver, committed):
    incident = _declare(committed)
    _advance(committed, T0 + 5 * MINUTE)

    texts = list(incident.timeline.filter(kind="page").values_list("text", flat=True))

    assert texts[1:] == [
        "Step 1: paged p1 (PagerDuty, Slack) on call in Primary on-call; next "
        "step in 5 min.",
        "Step 2: paged p2 (PagerDuty, Slack) on call in Secondary on-call; next "
        "step in 5 min.",
    ]


def _ack_path(receiver, number=0) -> str:
    event = receiver.bodies("/pagerduty")[number]
    return urlsplit(event["payload"]["custom_details"]["acknowledge"]).path


def test_opening_the_link_only_shows_the_button(staffed, receiver, committed, client):
    _declare(committed)

    with time_machine.travel(T0 + MINUTE, tick=False):
        response = client.get(_ack_path(receiver))

    assert response.status_code == 200
    assert b"Acknowledge" in response.content
    assert Page.objects.get().status == Page.Status.ACTIVE


def test_acknowledging_by_link_stops_the_escalation(
    staffed, receiver, committed, client
):
    incident = _declare(committed)

    with time_machine.travel(T0 + 2 * MINUTE, tick=False), committed():
        response = client.post(_ack_path(receiver))
    for minutes in (5, 10, 20, 60):
        _advance(committed, T0 + minutes * MINUTE)

    assert b"You acknowledged the page" in response.content
    assert paged(receiver) == [("pagerduty", "PD-p1"), ("slack", "p1")]
    page = incident.pages.get()
    assert page.status == Page.Status.ACKNOWLEDGED
    assert page.acknowledged_by == staffed["Primary on-call"]
    assert page.acknowledged_via == "link"
    assert page.notifications.get(channel="pagerduty").seconds_to_acknowledge == 120
    assert incident.timeline.filter(kind="acknowledged").get().text == (
        "p1 acknowledged the page via link on PagerDuty, 2 min after paging "
        "started; escalation stopped."
    )


def test_acknowledging_resolves_what_the_page_opened_in_pagerduty(
    staffed, receiver, committed
):
    _declare(committed)
    page = Page.objects.get()

    with committed():
        page_acknowledge(page_id=page.pk, user=staffed["Approvers"], via="admin")

    trigger, resolve = receiver.bodies("/pagerduty")
    assert resolve == {
        "routing_key": "PD-p1",
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_a_second_acknowledgement_changes_nothing(staffed, receiver, committed):
    _declare(committed)
    page = Page.objects.get()
    first, second = staffed["Primary on-call"], staffed["Approvers"]

    with committed():
        _, stopped = page_acknowledge(page_id=page.pk, user=first, via="admin")
        _, again = page_acknowledge(page_id=page.pk, user=second, via="admin")

    assert (stopped, again) == (True, False)
    page.refresh_from_db()
    assert page.acknowledged_by == first


def test_a_forged_or_expired_link_is_refused(staffed, receiver, committed, client):
    _declare(committed)
    path = _ack_path(receiver)

    assert client.get(path.replace("/ack/", "/ack/x")).status_code == 404
    with time_machine.travel(T0 + dt.timedelta(hours=73), tick=False):
        assert client.post(path).status_code == 404
    assert Page.objects.get().status == Page.Status.ACTIVE


def test_a_worker_dying_before_its_commit_leaves_the_step_to_the_next_pass(
    staffed, receiver, committed, monkeypatch
):
    with time_machine.travel(T0, tick=False):
        # Declared without the on-commit kick: the tick will find the page.
        incident_declare(title="Ledger out of balance", level=1)

    def killed(*args, **kwargs):
        raise SystemExit("worker killed mid-step")

    monkeypatch.setattr("incidents.services.paging._timeline", killed)
    with pytest.raises(SystemExit):
        _advance(committed, T0)
    assert not PageNotification.objects.exists()
    assert not Delivery.objects.exists()
    monkeypatch.undo()

    _advance(committed, T0 + dt.timedelta(seconds=30))
    _advance(committed, T0 + dt.timedelta(seconds=60))

    assert paged(receiver) == [("pagerduty", "PD-p1"), ("slack", "p1")]


def test_a_worker_dying_after_its_commit_neither_loses_nor_repeats_a_step(
    staffed, receiver, committed
):
    with time_machine.travel(T0, tick=False):
        incident_declare(title="Ledger out of balance", level=1)
        # The step commits, but the worker dies before handing the
        # deliveries to the broker: their on-commit callbacks never run.
        pages_advance()
    assert receiver.requests == []
    assert Delivery.objects.filter(status="pending").count() == 2

    # Restarted: the alerts sweeper sends what is pending; the next escalation
    # pass finds step 1 done and step 2 not yet due.
    with time_machine.travel(T0 + MINUTE, tick=False), committed():
        deliveries_sweep()
        pages_advance()
    _advance(committed, T0 + 2 * MINUTE)

    assert paged(receiver) == [("pagerduty", "PD-p1"), ("slack", "p1")]
    _advance(committed, T0 + 5 * MINUTE)
    assert paged(receiver)[2:] == [("pagerduty", "PD-p2"), ("slack", "p2")]


def test_running_the_task_twice_at_once_sends_each_step_once(
    staffed, receiver, committed
):
    _declare(committed)

    first = _advance(committed, T0 + 5 * MINUTE)
    second = _advance(committed, T0 + 5 * MINUTE)

    assert (first["steps"], second["steps"]) == (1, 0)
    assert len(paged(receiver)) == 4


def test_editing_the_matrix_changes_nothing_already_under_way(
    staffed, receiver, committed
):
    _declare(committed)
    sev1 = Severity.objects.get(level=1)
    step2 = sev1.escalation_steps.get(position=2)
    step2.rotation = Rotation.objects.get(name="Approvers")
    step2.save()
    sev1.escalation_steps.filter(position=3).delete()

    _advance(committed, T0 + 5 * MINUTE)
    _advance(committed, T0 + 10 * MINUTE)

    assert paged(receiver)[2:] == [
        ("pagerduty", "PD-p2"),
        ("slack", "p2"),
        ("pagerduty", "PD-p3"),
        ("slack", "p3"),
    ]


def test_raising_the_severity_continues_under_the_new_policy_from_the_same_step(
    staffed, receiver, committed
):
    incident = _declare(committed, level=2)
    _advance(committed, T0 + 10 * MINUTE)  # Sev2 step 2: p2

    with time_machine.travel(T0 + 12 * MINUTE, tick=False), committed():
        incident_set_severity(
            incident_id=incident.pk,
            severity=Severity.objects.get(level=1),
            actor=None,
            reason="balances wrong for many customers",
        )

    # Sev1 step 2 at once, then Sev1's 5 minutes to step 3.
    assert paged(receiver)[4:] == [("pagerduty", "PD-p2"), ("slack", "p2")]
    assert receiver.bodies("/pagerduty")[-1]["payload"]["severity"] == "critical"
    _advance(committed, T0 + 17 * MINUTE)
    assert paged(receiver)[6:] == [("pagerduty", "PD-p3"), ("slack", "p3")]
    statuses = list(incident.pages.order_by("pk").values_list("status", flat=True))
    assert statuses == ["superseded", "active"]


def test_a_link_from_before_the_severity_change_acknowledges_the_new_page(
    staffed, receiver, committed, client
):
    incident = _declare(committed, level=2)
    with time_machine.travel(T0, tick=False), committed():
        incident_set_severity(
            incident_id=incident.pk,
            severity=Severity.objects.get(level=1),
            actor=None,
            reason="worse",
        )

    with time_machine.travel(T0 + MINUTE, tick=False):
        client.post(_ack_path(receiver, number=0))

    assert list(incident.pages.order_by("pk").values_list("status", flat=True)) == [
        "superseded",
        "acknowledged",
    ]


def test_lowering_to_a_severity_that_does_not_page_stops_the_escalation(
    staffed, receiver, committed
):
    incident = _declare(committed)
    with committed():
        incident_set_severity(
            incident_id=incident.pk,
            severity=Severity.objects.get(level=4),
            actor=None,
            reason="cosmetic after all",
        )
    _advance(committed, T0 + 30 * MINUTE)

    assert len(paged(receiver)) == 2
    assert incident.pages.get().status == Page.Status.SUPERSEDED
    assert incident.timeline.last().text == "Sev4 does not page: escalation stopped."


def test_an_acknowledged_page_stays_acknowledged_when_the_severity_changes(
    staffed, receiver, committed
):
    incident = _declare(committed, level=2)
    page_acknowledge(page_id=incident.pages.get().pk, user=None, via="admin")

    with committed():
        incident_set_severity(
            incident_id=incident.pk,
            severity=Severity.objects.get(level=1),
            actor=None,
            reason="worse",
        )

    assert list(incident.pages.values_list("status", flat=True)) == ["acknowledged"]
    assert len(paged(receiver)) == 2


def test_resolving_the_incident_stops_paging(staffed, receiver, committed):
    incident = _declare(committed)

    with committed():
        incident_set_status(incident_id=incident.pk, status="resolved", actor=None)
    _advance(committed, T0 + 30 * MINUTE)

    assert len(paged(receiver)) == 2
    assert incident.pages.get().status == Page.Status.CANCELLED


def test_steps_that_reach_nobody_are_skipped_and_the_team_route_pages_last(
    receiver, committed
):
    # No rotation has anybody in it.
    incident = _declare(committed)

    page = incident.pages.get()
    assert page.status == Page.Status.EXHAUSTED
    assert page.notifications.filter(outcome="nobody").count() == 12  # 4 x 3 rounds
    (alert,) = Alert.objects.all()
    assert alert.key == f"incident.{incident.pk}.unacknowledged"
    assert [b["routing_key"] for b in receiver.bodies("/pagerduty")] == [ROUTING_KEY]
    assert len(receiver.bodies("/slack")) == 1


def test_acknowledging_an_exhausted_page_resolves_the_team_alert(receiver, committed):
    incident = _declare(committed)

    with committed():
        page_acknowledge(page_id=incident.pages.get().pk, user=None, via="admin")

    assert Alert.objects.get().status == Alert.Status.RESOLVED
    assert incident.pages.get().status == Page.Status.ACKNOWLEDGED


def test_a_person_without_the_channel_is_skipped_at_once(person, receiver, committed):
    silent = person("silent", pagerduty="", slack_webhook="", email="")
    primary = Rotation.objects.get(name="Primary on-call")
    primary.members.create(user=silent, position=1)
    secondary = Rotation.objects.get(name="Secondary on-call")
    secondary.members.create(user=person("backup"), position=1)

    incident = _declare(committed)

    assert paged(receiver) == [("pagerduty", "PD-backup"), ("slack", "backup")]
    outcomes = incident.pages.get().notifications.values_list("channel", "outcome")
    assert list(outcomes)[:2] == [("pagerduty", "no_contact"), ("slack", "no_contact")]


def test_a_severity_that_does_not_page_at_night_waits_for_the_morning(
    staffed, receiver, committed
):
    # 23:30 in Berlin; night ends at 08:00 Berlin, 07:00 UTC.
    night = dt.datetime(2026, 3, 2, 22, 30, tzinfo=dt.UTC)
    incident = _declare(committed, level=3, at=night)

    _advance(committed, dt.datetime(2026, 3, 3, 6, 59, tzinfo=dt.UTC))
    assert receiver.requests == []
    _advance(committed, dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.UTC))

    assert paged(receiver) == [("slack", "p1")]
    assert (
        "paging starts at 2026-03-03 08:00 Europe/Berlin"
        in incident.timeline.filter(kind="page").first().text
    )


def test_a_severity_that_pages_at_night_does_not_wait(staffed, receiver, committed):
    _declare(committed, level=1, at=dt.datetime(2026, 3, 2, 22, 30, tzinfo=dt.UTC))

    assert paged(receiver) == [("pagerduty", "PD-p1"), ("slack", "p1")]


def test_a_step_to_a_named_person_pages_that_person(person, receiver, committed):
    boss = person("boss")
    sev2 = Severity.objects.get(level=2)
    sev2.escalation_steps.all().delete()
    EscalationStep.objects.create(
        severity=sev2, position=1, person=boss, via_slack=False, wait_minutes=5
    )

    _declare(committed, level=2)

    assert paged(receiver) == [("pagerduty", "PD-boss")]
