"""An acknowledgement made in the PagerDuty app stops our escalation, through
PagerDuty's signed v3 webhook; the pages themselves go over real HTTP to the
loopback receiver standing in for PagerDuty."""

import datetime as dt
import hashlib
import hmac
import json

import pytest
import time_machine
from django.urls import reverse

from incidents.models import Page
from incidents.services.incidents import incident_declare
from incidents.services.paging import pages_advance
from tests.factories import make_staff
from tests.incidents.conftest import paged

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
SECRET = "pd-webhook-secret-0123456789abcdef"
URL = reverse("incidents:pagerduty_webhook")


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.PAGERDUTY_WEBHOOK_SECRET = SECRET


def _declare(committed):
    with time_machine.travel(T0, tick=False), committed():
        return incident_declare(title="Payouts failing at the provider", level=1)


def _event(
    incident_key, *, event_type="incident.acknowledged", email="", event_id="E1"
):
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-03-02T10:02:00Z",
            "agent": {"type": "user_reference", "summary": "Someone", "email": email},
            "data": {
                "id": "Q1",
                "type": "incident",
                "status": "acknowledged",
                "incident_key": incident_key,
            },
        }
    }


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(client, payload, *, signature=None):
    body = json.dumps(payload).encode()
    headers = {"X-PagerDuty-Signature": _sign(body) if signature is None else signature}
    return client.post(URL, body, content_type="application/json", headers=headers)


def _our_key(receiver) -> str:
    return receiver.bodies("/pagerduty")[0]["dedup_key"]


def test_an_acknowledgement_in_pagerduty_stops_the_escalation(
    staffed, receiver, committed, client
):
    incident = _declare(committed)
    primary = staffed["Primary on-call"]

    with time_machine.travel(T0 + 3 * MINUTE, tick=False), committed():
        response = _post(client, _event(_our_key(receiver), email=primary.email))
    for minutes in (5, 10, 20, 60):
        with time_machine.travel(T0 + minutes * MINUTE, tick=False), committed():
            pages_advance()

    assert response.status_code == 200
    assert response.json() == {"event": "E1", "result": "acknowledged"}
    assert paged(receiver) == [("pagerduty", "PD-p1"), ("slack", "p1")]
    page = incident.pages.get()
    assert (page.status, page.acknowledged_via) == (
        Page.Status.ACKNOWLEDGED,
        "pagerduty",
    )
    assert page.acknowledged_by == primary
    assert page.notifications.get(channel="pagerduty").seconds_to_acknowledge == 180
    assert incident.timeline.filter(kind="acknowledged").get().text == (
        "p1 acknowledged the page via pagerduty on PagerDuty, 3 min after paging "
        "started; escalation stopped."
    )


def test_an_unknown_pagerduty_user_stops_it_but_is_not_taken_for_the_person_paged(
    staffed, receiver, committed, client
):
    incident = _declare(committed)

    with committed():
        response = _post(client, _event(_our_key(receiver), email="who@else.example"))

    assert response.json()["result"] == "acknowledged"
    page = incident.pages.get()
    assert page.status == Page.Status.ACKNOWLEDGED
    assert page.acknowledged_by is None
    assert page.notifications.get(channel="pagerduty").acknowledged_at is None


def test_a_repeated_delivery_changes_nothing(staffed, receiver, committed, client):
    _declare(committed)
    payload = _event(_our_key(receiver))

    with committed():
        first = _post(client, payload)
        second = _post(client, payload)

    assert first.json()["result"] == "acknowledged"
    assert second.json()["result"] == "already acknowledged"


@pytest.mark.parametrize(
    "signature",
    ["", "v1=" + "0" * 64, _sign(b"another body"), _sign(b"x", "another-secret")],
)
def test_a_bad_or_missing_signature_is_refused_and_changes_nothing(
    staffed, receiver, committed, client, signature
):
    _declare(committed)

    response = _post(client, _event(_our_key(receiver)), signature=signature)

    assert response.status_code == 401
    assert Page.objects.get().status == Page.Status.ACTIVE


def test_one_good_signature_among_several_is_enough(
    staffed, receiver, committed, client
):
    _declare(committed)
    payload = _event(_our_key(receiver))
    body = json.dumps(payload).encode()

    with committed():
        response = _post(client, payload, signature=f"v1={'0' * 64}, {_sign(body)}")

    assert response.status_code == 200
    assert Page.objects.get().status == Page.Status.ACKNOWLEDGED


def test_other_events_and_other_incidents_are_answered_and_ignored(
    staffed, receiver, committed, client
):
    _declare(committed)

    triggered = _post(
        client, _event(_our_key(receiver), event_type="incident.resolved")
    )
    foreign = _post(client, _event("someone-elses-incident"))

    assert triggered.json()["result"] == "ignored: not an acknowledgement"
    assert foreign.json()["result"] == "ignored: not one of our pages"
    assert Page.objects.get().status == Page.Status.ACTIVE


def test_malformed_oversized_and_unconfigured_deliveries_get_clear_errors(
    client, settings
):
    body = b"not json"
    malformed = client.post(
        URL, body, content_type="application/json",
        headers={"X-PagerDuty-Signature": _sign(body)},
    )  # fmt: skip
    big = b"{" + b" " * (256 * 1024) + b"}"
    oversized = client.post(
        URL, big, content_type="application/json",
        headers={"X-PagerDuty-Signature": _sign(big)},
    )  # fmt: skip
    get = client.get(URL)
    settings.PAGERDUTY_WEBHOOK_SECRET = ""
    unconfigured = _post(client, _event("k"))

    assert malformed.status_code == 400
    assert "not a PagerDuty v3 event" in malformed.json()["error"]
    assert oversized.status_code == 413
    assert get.status_code == 405
    assert unconfigured.status_code == 404


def test_the_staff_account_is_matched_by_email_only_when_it_is_unique(
    staffed, receiver, committed, client
):
    incident = _declare(committed)
    make_staff(email="twin@example.com")
    make_staff(email="TWIN@example.com")  # two accounts, one address

    with committed():
        _post(client, _event(_our_key(receiver), email="twin@example.com"))

    assert incident.pages.get().acknowledged_by is None


def test_another_staff_member_acknowledging_in_pagerduty_is_recorded_as_such(
    staffed, receiver, committed, client
):
    incident = _declare(committed)
    colleague = make_staff(email="colleague@example.com")

    with committed():
        _post(client, _event(_our_key(receiver), email="Colleague@example.com"))

    page = incident.pages.get()
    assert page.acknowledged_by == colleague
    # The notification paged someone else: it is not marked as answered.
    assert page.notifications.get(channel="pagerduty").acknowledged_at is None
