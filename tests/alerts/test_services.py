"""Triggering and resolving alerts, over real HTTP to a loopback receiver."""

import datetime as dt

import pytest
import time_machine
from django.core import mail

from alerts.channels import Message
from alerts.models import Alert, Delivery
from alerts.services import Target, alert_resolve, alert_trigger, notify
from tests.http_receiver import ROUTING_KEY

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def _trigger(**fields):
    values = {
        "key": "job.nightly.failed",
        "summary": "Job nightly failed (1 in a row): ValueError: boom",
        "severity": "error",
        "source": "worker-1",
        "component": "nightly",
        "group": "scheduled-jobs",
        "alert_class": "job_failed",
        "details": {"run_id": 7},
    }
    values.update(fields)
    return alert_trigger(**values)


@time_machine.travel(T0, tick=False)
def test_it_sends_a_pagerduty_trigger_event_of_the_exact_shape(receiver, committed):
    with committed():
        _trigger()

    assert receiver.bodies("/pagerduty") == [
        {
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": "job.nightly.failed",
            "payload": {
                "summary": "Job nightly failed (1 in a row): ValueError: boom",
                "source": "worker-1",
                "severity": "error",
                "timestamp": "2026-03-02T09:30:00+00:00",
                "component": "nightly",
                "group": "scheduled-jobs",
                "class": "job_failed",
                "custom_details": {"run_id": 7},
            },
        }
    ]


@time_machine.travel(T0, tick=False)
def test_it_posts_slack_text_and_blocks(receiver, committed):
    with committed():
        _trigger()

    (body,) = receiver.bodies("/slack")
    assert body["text"] == (
        ":rotating_light: ERROR: alert: "
        "Job nightly failed (1 in a row): ValueError: boom"
    )
    assert [block["type"] for block in body["blocks"]] == [
        "header",
        "section",
        "section",
        "context",
    ]
    assert body["blocks"][2]["fields"] == [{"type": "mrkdwn", "text": "*run_id*\n7"}]
    assert body["blocks"][3]["elements"][0]["text"] == (
        "worker-1 | job.nightly.failed | 2026-03-02T09:30:00+00:00"
    )


def test_it_notifies_once_while_the_same_key_stays_open(receiver, committed):
    with committed():
        first = _trigger()
    with committed():
        second = _trigger(summary="Job nightly failed (2 in a row): ValueError: boom")

    assert second.pk == first.pk
    assert second.trigger_count == 2
    assert len(receiver.bodies("/pagerduty")) == 1
    assert len(receiver.bodies("/slack")) == 1


def test_it_resolves_with_the_same_dedup_key(receiver, committed):
    with committed():
        _trigger()
    with committed():
        alert_resolve(key="job.nightly.failed")

    events = receiver.bodies("/pagerduty")
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert events[1] == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "job.nightly.failed",
    }
    assert Alert.objects.get().status == Alert.Status.RESOLVED


def test_it_opens_a_new_alert_after_a_resolve(receiver, committed):
    with committed():
        _trigger()
    with committed():
        alert_resolve(key="job.nightly.failed")
    with committed():
        _trigger()

    assert Alert.objects.filter(key="job.nightly.failed").count() == 2
    assert [e["event_action"] for e in receiver.bodies("/pagerduty")] == [
        "trigger",
        "resolve",
        "trigger",
    ]


def test_it_ignores_a_resolve_without_an_open_alert(receiver, committed):
    with committed():
        assert alert_resolve(key="job.nightly.failed") is None
    assert receiver.requests == []


def test_it_records_a_muted_alert_without_notifying(receiver, committed):
    with committed():
        alert = _trigger(muted_reason="maintenance window 3: database upgrade")
        alert_resolve(key="job.nightly.failed")

    alert.refresh_from_db()
    assert alert.muted_reason == "maintenance window 3: database upgrade"
    assert alert.status == Alert.Status.RESOLVED
    assert receiver.requests == []
    assert Delivery.objects.count() == 0


def test_it_notifies_when_an_open_muted_alert_triggers_unmuted(receiver, committed):
    with committed():
        _trigger(muted_reason="maintenance window 3: database upgrade")
    assert receiver.requests == []
    with committed():
        _trigger()

    assert len(receiver.bodies("/pagerduty")) == 1


def test_it_sends_a_route_without_configured_channels_to_email(
    receiver, committed, settings
):
    settings.PAGERDUTY_ROUTING_KEY = ""
    settings.SLACK_WEBHOOK_URL = ""

    with committed():
        _trigger()

    assert receiver.requests == []
    (email,) = mail.outbox
    assert email.to == ["oncall@example.com"]
    assert email.subject == (
        "[opsadmin ALERT] Job nightly failed (1 in a row): ValueError: boom"
    )


def test_it_notifies_one_named_target_outside_any_alert(receiver, committed):
    with committed():
        delivery = notify(
            channel="pagerduty",
            target="PERSONALKEY",
            message=Message(summary="Sev1 incident 12: on call", key="inc.12"),
        )

    (event,) = receiver.bodies("/pagerduty")
    assert event["routing_key"] == "PERSONALKEY"
    assert event["dedup_key"] == "inc.12"
    delivery.refresh_from_db()
    assert delivery.alert is None
    assert delivery.status == Delivery.Status.DELIVERED


def test_it_triggers_on_explicit_targets(receiver, committed):
    with committed():
        alert_trigger(
            key="incident.12.sev1",
            summary="Sev1: payouts down",
            route=[Target("email", "alice@example.com")],
        )

    assert receiver.requests == []
    assert mail.outbox[0].to == ["alice@example.com"]
