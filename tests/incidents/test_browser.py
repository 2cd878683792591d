"""The acknowledgement link on a phone-sized headless Chromium."""

import datetime as dt

import pytest

from incidents.models import EscalationStep, Incident, Page, PageNotification, Severity
from incidents.services.paging import acknowledge_token, page_start, pages_advance
from tests.browser import chromium, watch_policy_violations
from tests.factories import make_oncall_person, make_rotation

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def _paged_note() -> PageNotification:
    # Its own severity: the live server's database is flushed between tests,
    # the seeded matrix with it.
    severity = Severity.objects.create(
        level=8,
        name="Sev8",
        title="Browser",
        meaning="-",
        response_minutes=5,
        update_minutes=30,
        who_must_be_told="-",
        pages_at_night=True,
    )
    person = make_oncall_person("phone", email="phone@example.com")
    EscalationStep.objects.create(
        severity=severity,
        position=1,
        rotation=make_rotation(members=[person], starts_on=dt.date(2020, 1, 6)),
        via_pagerduty=False,
        via_slack=False,
        via_email=True,
    )
    incident = Incident.objects.create(title="Payouts failing", severity=severity)
    page_start(severity=severity, incident=incident)
    pages_advance()
    return PageNotification.objects.get(page__incident=incident)


def test_a_phone_acknowledges_the_page_with_one_tap(live_server, receiver):
    note = _paged_note()
    url = f"{live_server.url}/incidents/ack/{acknowledge_token(note)}/"

    with chromium() as browser:
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        page = phone.new_page()
        violations = watch_policy_violations(page)
        page.goto(url)
        page.tap("button[type=submit]")
        page.wait_for_selector(".done")
        text = page.inner_text("main")

    assert "You acknowledged the page" in text
    assert "Escalation has stopped" in text
    assert violations == []
    assert Page.objects.get().status == Page.Status.ACKNOWLEDGED
