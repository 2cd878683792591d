"""Escalation tests: the matrix run for real, marked TEST, with a report."""

import datetime as dt
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from incidents.models import EscalationTest, Page, Rotation, Severity
from incidents.selectors import escalation_test_findings
from incidents.services.paging import escalation_test_start, pages_advance
from security.roles import INCIDENT_COMMANDER
from tests.conftest import log_in_verified
from tests.factories import make_staff
from tests.incidents.conftest import paged

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def half_staffed(person):
    """Sev1's rotations: a reachable primary, an empty secondary, a commander
    with no contact at all, a manager reachable by e-mail only."""
    people = {
        "Primary on-call": person("prim"),
        "Incident commanders": person("ic", pagerduty="", slack_webhook="", email=""),
        "Engineering management": person("boss", pagerduty="", slack_webhook=""),
    }
    for rotation, user in people.items():
        Rotation.objects.get(name=rotation).members.create(user=user, position=1)
    return people


def _start(committed):
    with time_machine.travel(T0, tick=False), committed():
        return escalation_test_start(
            severity=Severity.objects.get(level=1), actor=None, note="quarterly"
        )


def _advance(committed, at):
    with time_machine.travel(at, tick=False), committed():
        pages_advance()


def test_every_message_is_marked_as_a_test(half_staffed, receiver, committed):
    test = _start(committed)

    (event,) = receiver.bodies("/pagerduty")
    assert event["payload"]["summary"].startswith(
        f"[TEST] Escalation test {test.pk} of Sev1, step 1 of 4: not a real incident."
    )
    assert event["payload"]["custom_details"]["test"].startswith("yes")
    (slack,) = receiver.bodies("/slack/prim")
    assert slack["text"].startswith(":bell: CRITICAL: notification: [TEST]")


def test_it_flags_an_empty_rotation_and_a_person_without_contact(
    half_staffed, receiver, committed
):
    test = _start(committed)

    # Steps 2 and 3 reach nobody and are passed at once; step 4 waits for
    # step 1's five minutes like any page.
    assert paged(receiver) == [("pagerduty", "PD-prim"), ("slack", "prim")]
    _advance(committed, T0 + 5 * MINUTE)
    assert [m.to for m in mail.outbox] == [["boss@example.com"]]
    assert escalation_test_findings(test)[:4] == [
        "step 2: nobody on call in Secondary on-call",
        "step 3: ic has no PagerDuty contact",
        "step 3: ic has no Slack contact",
        "step 3: ic has no e-mail contact",
    ]


def test_it_records_who_answered_on_which_channel_and_how_fast(
    half_staffed, receiver, committed, client
):
    test = _start(committed)
    fields = receiver.bodies("/slack/prim")[0]["blocks"][2]["fields"]
    (link,) = [f["text"] for f in fields if f["text"].startswith("*acknowledge*")]
    path = urlsplit(link.split("\n")[1]).path

    with time_machine.travel(T0 + 2 * MINUTE, tick=False), committed():
        response = client.post(path)

    assert b"TEST" in response.content
    notes = Page.objects.get(escalation_test=test).notifications
    answered = notes.get(channel="slack", person__username="prim")
    assert answered.seconds_to_acknowledge == 120
    assert (
        notes.get(channel="pagerduty", person__username="prim").acknowledged_at is None
    )


def test_a_step_answered_by_everyone_moves_on_at_once(
    half_staffed, receiver, committed, client
):
    _start(committed)
    path = urlsplit(
        receiver.bodies("/pagerduty")[0]["payload"]["custom_details"]["acknowledge"]
    ).path

    with time_machine.travel(T0 + MINUTE, tick=False), committed():
        client.post(path)

    # Not five minutes later: the manager's e-mail went as soon as prim answered.
    assert [m.to for m in mail.outbox] == [["boss@example.com"]]


def test_it_goes_through_every_step_and_flags_who_timed_out(
    half_staffed, receiver, committed
):
    test = _start(committed)
    _advance(committed, T0 + 5 * MINUTE)
    _advance(committed, T0 + 20 * MINUTE)

    test.refresh_from_db()
    assert test.finished_at == T0 + 20 * MINUTE
    assert Page.objects.get(escalation_test=test).status == Page.Status.COMPLETED
    assert escalation_test_findings(test)[4:] == [
        "step 4: boss has no PagerDuty contact",
        "step 1: prim did not acknowledge within 5 min (the step would time out)",
        "step 4: boss did not acknowledge within 15 min (the step would time out)",
    ]
    # A test never repeats the policy, whatever the severity says.
    _advance(committed, T0 + 60 * MINUTE)
    assert len(paged(receiver)) == 2


def test_an_incident_commander_runs_one_from_the_admin(
    half_staffed, receiver, committed, client, roles
):
    commander = make_staff(roles=[INCIDENT_COMMANDER])
    log_in_verified(client, commander)

    with time_machine.travel(T0, tick=False), committed():
        response = client.post(
            reverse("admin:incidents_escalationtest_add"),
            {"severity": Severity.objects.get(level=1).pk, "note": "after rota change"},
        )
    _advance(committed, T0 + 5 * MINUTE)

    test = EscalationTest.objects.get()
    assert response["Location"] == reverse(
        "admin:incidents_escalationtest_change", args=[test.pk]
    )
    assert test.started_by == commander
    with time_machine.travel(T0 + 6 * MINUTE, tick=False):
        page = client.get(response["Location"])
    assert b"step 2: nobody on call in Secondary on-call" in page.content
    assert b"step 1: prim did not acknowledge within 5 min" in page.content
    assert b"<td>prim</td><td>PagerDuty</td><td>sent</td><td>delivered</td>" in (
        page.content
    )
