"""The admin pages of the deep scan, through the test client."""

import pytest
from django.urls import reverse

from reconciliation.models import DeepScan, ReconciliationTicket
from security.services import roles_sync
from tests.conftest import log_in_verified
from tests.factories import make_staff
from tests.reconciliation.scanning import break_wallet, scan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def operator(client):
    user = make_staff(superuser=True)
    log_in_verified(client, user)
    return user


@pytest.fixture
def ticket(books):
    break_wallet(books["alice"], by=77)
    scan(settle_tickets=True)
    return ReconciliationTicket.objects.get()


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?open=yes",
        "?currency=EUR",
        "?invariant=wallet_balance",
        "?amount_band=1",
        "?age=week",
    ],
)
def test_the_ticket_list_filters_keep_the_open_ticket(client, operator, ticket, query):
    response = client.get(
        reverse("admin:reconciliation_reconciliationticket_changelist") + query
    )

    assert response.status_code == 200
    assert ticket.subject_key in response.content.decode()


@pytest.mark.parametrize("query", ["?open=no", "?currency=USD", "?age=older"])
def test_the_ticket_list_filters_leave_out_other_tickets(
    client, operator, ticket, query
):
    response = client.get(
        reverse("admin:reconciliation_reconciliationticket_changelist") + query
    )

    assert response.status_code == 200
    assert ticket.subject_key not in response.content.decode()


def test_the_scan_history_shows_progress(client, operator, ticket):
    scan_row = DeepScan.objects.get()

    response = client.get(reverse("admin:reconciliation_deepscan_changelist"))

    page = response.content.decode()
    assert f"{scan_row.ranges_total}/{scan_row.ranges_total} (100%)" in page
    assert f"{scan_row.rows_scanned:,}" in page


def test_an_operator_takes_a_ticket_with_a_reason(client, operator, ticket):
    url = reverse("admin:reconciliation_reconciliationticket_change", args=[ticket.pk])

    response = client.post(
        url,
        {
            "owner": operator.pk,
            "status": "investigating",
            "priority": "3",
            "note": "looking at the last deposit",
            "change_reason": "mine",
        },
    )

    ticket.refresh_from_db()
    assert response.status_code == 302
    assert (ticket.owner, ticket.status, ticket.priority) == (
        operator,
        "investigating",
        3,
    )
    latest = ticket.history.first()
    assert (latest.history_change_reason, latest.history_user) == ("mine", operator)


def test_resuming_reports_what_it_skipped(client, operator, ticket):
    response = client.post(
        reverse("admin:reconciliation_deepscan_changelist"),
        {"action": "resume", "_selected_action": [DeepScan.objects.get().pk]},
        follow=True,
    )

    assert "0 scan queued to resume; 1 skipped" in response.content.decode()


def test_an_operator_may_resume_scans_and_a_viewer_may_not(client, ticket):
    roles_sync(apply=True)
    changelist = reverse("admin:reconciliation_deepscan_changelist")

    log_in_verified(client, make_staff(roles=["Operator"]))
    assert "Resume the selected" in client.get(changelist).content.decode()

    log_in_verified(client, make_staff(roles=["Viewer"]))
    assert "Resume the selected" not in client.get(changelist).content.decode()
