from datetime import date

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from security.models import AuditEntry
from security.roles import VIEWER
from tests.factories import make_staff, make_waiver, verified_request
from tests.security.conftest import log_in
from waivers.models import Waiver, WaiverStatus
from waivers.services.register import WaiverError, waiver_approve

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:waivers_waiver_changelist"
LOGIN_TIME = "2026-12-01 09:00:00+00:00"
STALE_TIME = "2026-12-01 09:05:30+00:00"  # 330 s later: past STEP_UP_MAX_AGE_SECONDS


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(LOGIN_TIME, tick=False):
        yield


def act(client, action, waiver, **data):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, ACTION_CHECKBOX_NAME: [waiver.pk], **data},
        follow=True,
    )


def test_a_security_admin_approves_a_waiver_someone_else_owns(
    client, security_admin, approver
):
    waiver = make_waiver(owner=security_admin)
    log_in(client, approver)

    response = act(client, "approve", waiver)

    waiver.refresh_from_db()
    assert waiver.status == WaiverStatus.APPROVED
    assert (waiver.approved_by, waiver.approved_at) == (approver, timezone.now())
    assert f"Approved: {waiver.reference}." in response.content.decode()
    entry = AuditEntry.objects.get(action="waiver.approved")
    assert (entry.actor, entry.after["approved_by"]) == (approver, approver.username)
    assert waiver.history.first().history_user == approver


def test_the_owner_cannot_approve_their_own_waiver(client, security_admin):
    waiver = make_waiver(owner=security_admin)
    log_in(client, security_admin)

    response = act(client, "approve", waiver)

    waiver.refresh_from_db()
    assert waiver.status == WaiverStatus.REQUESTED
    assert "the owner of a waiver cannot approve it" in response.content.decode()
    assert not AuditEntry.objects.filter(action="waiver.approved").exists()


def test_the_database_refuses_an_approval_by_the_owner(security_admin):
    waiver = make_waiver(owner=security_admin)
    waiver.status = WaiverStatus.APPROVED
    waiver.approved_by = security_admin
    waiver.approved_at = timezone.now()

    with pytest.raises(IntegrityError), transaction.atomic():
        waiver.save()


def test_an_approval_with_a_stale_second_factor_asks_for_a_code_first(
    client, security_admin, approver
):
    waiver = make_waiver(owner=security_admin)
    log_in(client, approver)

    with time_machine.travel(STALE_TIME, tick=False):
        response = client.post(
            reverse(CHANGELIST),
            {"action": "approve", ACTION_CHECKBOX_NAME: [waiver.pk]},
        )

    waiver.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security:step_up"))
    assert waiver.status == WaiverStatus.REQUESTED


def test_the_service_refuses_an_approval_without_a_fresh_second_factor(
    security_admin, approver
):
    waiver = make_waiver(owner=security_admin)
    request = verified_request(approver)

    with (
        time_machine.travel(STALE_TIME, tick=False),
        pytest.raises(WaiverError, match="second factor verified in the last 5 min"),
    ):
        waiver_approve(waiver_id=waiver.pk, actor=approver, request=request)
    with pytest.raises(WaiverError, match="second factor"):
        waiver_approve(waiver_id=waiver.pk, actor=approver, request=None)


def test_approval_needs_a_justification_and_a_compensating_control(
    security_admin, approver
):
    waiver = make_waiver(owner=security_admin, compensating_control="")

    with pytest.raises(WaiverError, match="compensating control"):
        waiver_approve(
            waiver_id=waiver.pk, actor=approver, request=verified_request(approver)
        )


def test_a_viewer_can_read_the_register_and_approve_nothing(client, roles, approver):
    viewer = make_staff(roles=[VIEWER])
    waiver = make_waiver(owner=approver)
    log_in(client, viewer)

    listing = client.get(reverse(CHANGELIST))
    act(client, "approve", waiver)

    waiver.refresh_from_db()
    assert listing.status_code == 200
    assert waiver.status == WaiverStatus.REQUESTED
    with pytest.raises(WaiverError, match="lacks the permission"):
        waiver_approve(
            waiver_id=waiver.pk, actor=viewer, request=verified_request(viewer)
        )


def test_rejecting_asks_for_a_reason_and_records_it(client, security_admin, approver):
    waiver = make_waiver(owner=security_admin, risk="critical")
    log_in(client, approver)

    form = act(client, "reject", waiver)
    done = act(client, "reject", waiver, reason="No compensating control, SEC-29")

    waiver.refresh_from_db()
    assert form.templates[0].name == "admin/waivers/waiver/decision.html"
    assert done.status_code == 200
    assert (waiver.status, waiver.ended_by) == (WaiverStatus.REJECTED, approver)
    entry = AuditEntry.objects.get(action="waiver.rejected")
    assert entry.reason == "No compensating control, SEC-29"


def test_closing_an_approved_waiver_ends_it_and_makes_it_read_only(
    client, security_admin, approver
):
    waiver = make_waiver(owner=security_admin, approved_by=approver)
    log_in(client, approver)

    act(client, "close", waiver, reason="PagerDuty key deployed, OPS-412")
    change = client.post(
        reverse("admin:waivers_waiver_change", args=[waiver.pk]),
        {"item": "reopened", "change_reason": "x"},
    )

    waiver.refresh_from_db()
    assert waiver.status == WaiverStatus.CLOSED
    assert change.status_code == 403
    assert AuditEntry.objects.get(action="waiver.closed").reason == (
        "PagerDuty key deployed, OPS-412"
    )


def _form(owner, **fields):
    data = {
        "reference": "",
        "item": "TLS certificates renewed by hand",
        "secret": "",
        "risk": "low",
        "owner": owner.pk,
        "deadline": "2026-12-20",
        "justification": "Automation lands with the new ingress.",
        "compensating_control": "Expiry monitored; alert 21 days ahead.",
        "change_reason": "Agreed in the go-live review, OPS-430",
    }
    data.update(fields)
    return data


def test_a_waiver_added_in_the_admin_is_audited_with_its_reason(
    client, security_admin, approver
):
    log_in(client, security_admin)

    response = client.post(reverse("admin:waivers_waiver_add"), _form(approver))

    assert response.status_code == 302
    waiver = Waiver.objects.get()
    assert (waiver.reference, waiver.status) == ("W-001", WaiverStatus.REQUESTED)
    entry = AuditEntry.objects.get(action="waiver.created")
    assert (entry.actor, entry.reason) == (
        security_admin,
        "Agreed in the go-live review, OPS-430",
    )


def test_adding_with_a_stale_second_factor_asks_for_a_code_first(
    client, security_admin, approver
):
    log_in(client, security_admin)

    with time_machine.travel(STALE_TIME, tick=False):
        response = client.post(reverse("admin:waivers_waiver_add"), _form(approver))

    assert response["Location"].startswith(reverse("security:step_up"))
    assert not Waiver.objects.exists()


def test_a_secret_that_is_not_in_the_inventory_is_refused(
    client, security_admin, approver
):
    log_in(client, security_admin)

    response = client.post(
        reverse("admin:waivers_waiver_add"), _form(approver, secret="NOPE")
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_moving_the_deadline_of_an_approved_waiver_withdraws_its_approval(
    client, security_admin, approver
):
    waiver = make_waiver(owner=approver, approved_by=security_admin)
    log_in(client, security_admin)
    form = _form(approver, item=waiver.item, deadline="2027-02-28")
    del form["reference"]

    response = client.post(
        reverse("admin:waivers_waiver_change", args=[waiver.pk]), form, follow=True
    )

    waiver.refresh_from_db()
    assert waiver.deadline == date(2027, 2, 28)
    assert (waiver.status, waiver.approved_by) == (WaiverStatus.REQUESTED, None)
    assert "it awaits approval again" in response.content.decode()


def test_history_can_be_read_but_not_reverted(client, security_admin, approver):
    waiver = make_waiver(owner=approver, approved_by=security_admin)
    first = waiver.history.earliest()
    url = reverse(
        "admin:waivers_waiver_simple_history", args=[waiver.pk, first.history_id]
    )
    log_in(client, security_admin)

    assert client.get(url).status_code == 200
    assert (
        client.post(url, _form(approver)).status_code == 403
    )  # refused site-wide by security.middleware
    waiver.refresh_from_db()
    assert waiver.status == WaiverStatus.APPROVED


def test_the_register_shows_open_counts_risk_and_days_to_deadline(
    client, security_admin, approver
):
    make_waiver(owner=approver, risk="high", deadline=date(2026, 11, 28))
    make_waiver(owner=approver, risk="low", deadline=date(2026, 12, 5))
    make_waiver(owner=approver, risk="medium", status=WaiverStatus.CLOSED)
    log_in(client, security_admin)

    page = client.get(reverse(CHANGELIST)).content.decode()

    assert "<strong>2</strong> open waivers" in page
    assert '<span class="waiver-badge waiver-risk-high">1 high</span>' in page
    assert '<span class="waiver-days-past">3 days late</span>' in page
    assert '<span class="waiver-days-soon">4 days</span>' in page
    assert '<span class="waiver-days-past">1 past deadline</span>' in page
    assert "waivers/register.css" in page


def test_the_secrets_page_lists_the_inventory_without_values(
    client, security_admin, production_secrets
):
    log_in(client, security_admin)

    page = client.get(reverse("admin:waivers_secretobservation_changelist"))

    text = page.content.decode()
    assert page.status_code == 200
    assert "PROVIDER_ACME_WEBHOOK_SECRET" in text
    assert "RECON_TICKET_WEBHOOK_SECRET" in text
    for value in production_secrets.values():
        assert value not in text


def test_the_change_page_shows_the_id_read_only_and_asks_for_a_reason(
    client, security_admin, approver
):
    waiver = make_waiver(owner=approver, reference="W-042")
    log_in(client, security_admin)

    page = client.get(reverse("admin:waivers_waiver_change", args=[waiver.pk]))

    form = page.context["adminform"].form
    assert "reference" not in form.fields
    assert "change_reason" in form.fields
    assert "W-042" in page.content.decode()


def test_a_viewer_cannot_open_the_secrets_page(client, roles):
    viewer = make_staff(roles=[VIEWER])
    log_in(client, viewer)

    page = client.get(reverse("admin:waivers_secretobservation_changelist"))

    assert page.status_code == 403
