import pytest
import time_machine

from reconciliation.models import DailyReport, DailyReportSettlementItem
from reconciliation.services import (
    StatementInput,
    daily_report_build,
    report_content,
)
from reconciliation.settlement import StatementError
from stuck.services import stuck_detect
from tests.conftest import log_in_verified
from tests.factories import make_deposit
from tests.reconciliation.conftest import DAY, HEADER, STATEMENT, at

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _build(statement=STATEMENT, **options):
    options.setdefault("send_email", False)
    with at(30):
        return daily_report_build(
            report_date=DAY,
            statements={"sandbox": StatementInput(statement, "sandbox.csv")},
            **options,
        )


def _items():
    return sorted(
        DailyReportSettlementItem.objects.values_list("kind", "provider_reference")
    )


def test_it_finds_missing_and_mismatched_settlement_lines(business):
    result = _build()

    assert _items() == [
        ("amount_mismatch", "po-2"),
        ("currency_mismatch", "dep-b"),
        ("missing_at_provider", "po-3"),
        ("missing_internal", "po-4"),
        ("missing_internal", "po-ghost"),
    ]
    assert (result.matched, result.statement_lines) == (2, 6)
    ghost = DailyReportSettlementItem.objects.get(provider_reference="po-ghost")
    assert ghost.detail == "no payout with this provider reference"
    processing = DailyReportSettlementItem.objects.get(provider_reference="po-4")
    assert processing.detail == "our payout is processing, no payout_paid booked"
    amount = DailyReportSettlementItem.objects.get(provider_reference="po-2")
    assert (amount.statement_amount, amount.internal_amount) == (7_100, 7_000)


def test_rerunning_a_day_replaces_its_report_with_an_identical_one(business):
    first = _build()
    first_content = report_content(DailyReport.objects.get())

    second = _build()

    report = DailyReport.objects.get()
    assert (second.replaced, report.pk) == (True, second.report_id)
    assert second.report_id != first.report_id
    assert second.content_digest == first.content_digest
    assert report_content(report) == first_content


def test_a_change_in_the_books_changes_the_digest(business):
    first = _build()
    with at(6):
        make_deposit(amount=1)

    assert _build().content_digest != first.content_digest


def test_malformed_lines_are_reported_not_guessed(business):
    statement = STATEMENT + (
        "po-3,payout,15.00,EUR,settled,2026-03-02T13:00:00Z\n"
        "po-5,refund,100,EUR,settled,2026-03-02T13:00:00Z\n"
        "po-6,payout,100,EUR\n"
        "po-1,payout,5000,EUR,settled,2026-03-02T11:00:00Z\n"
    )

    result = _build(statement)

    malformed = DailyReportSettlementItem.objects.filter(kind="malformed")
    assert result.malformed_lines == 4
    assert list(malformed.values_list("line_number", flat=True)) == [8, 9, 10, 11]
    assert malformed.get(line_number=8).detail.startswith(
        "amount '15.00' is not a positive integer of minor units"
    )
    assert malformed.get(line_number=11).detail.startswith("duplicate of line 4")
    # po-3 stays missing at the provider: its only line was unreadable.
    assert ("missing_at_provider", "po-3") in _items()


def test_a_statement_with_the_wrong_header_keeps_the_previous_report(business):
    kept = _build()

    with pytest.raises(StatementError):
        _build("reference,amount\npo-1,5000\n")

    assert DailyReport.objects.get().pk == kept.report_id


def test_operations_are_counted_and_summed_per_provider_currency_and_state(business):
    _build()

    report = DailyReport.objects.get()
    settled = {
        (line.operation_kind, line.state): (line.count, line.amount)
        for line in report.operation_lines.filter(basis="settled")
    }
    assert settled == {
        ("deposit", "succeeded"): (2, 12_000),
        ("payout", "paid"): (3, 13_500),
        ("withdrawal", "completed"): (3, 13_500),
    }
    opened = report.operation_lines.get(
        basis="opened", operation_kind="payout", state="processing"
    )
    assert (opened.count, opened.amount) == (1, 900)
    assert report.operation_count == 10


def test_ledger_movements_of_the_day_are_grouped_by_kind(business):
    _build()

    lines = {
        line.kind: (line.provider, line.transaction_count, line.amount)
        for line in DailyReport.objects.get().ledger_lines.all()
    }
    assert lines == {
        "deposit_credit": ("sandbox", 2, 12_000),
        "withdrawal_hold": ("sandbox", 4, 14_400),
        "payout_paid": ("sandbox", 3, 13_500),
    }


def test_open_stuck_cases_are_part_of_the_report(business):
    with at(12):
        stuck_detect()

    result = _build()

    line = DailyReport.objects.get().stuck_lines.get()
    assert (line.item_kind, line.state, line.count) == ("payout", "processing", 1)
    assert result.open_stuck_cases == 1


def test_an_empty_day_reports_zero_rows():
    result = _build(HEADER)

    assert (result.row_count, result.statement_lines) == (0, 0)
    assert DailyReport.objects.get().operation_count == 0


def test_a_provider_without_a_statement_is_reported_as_not_checked(business):
    with at(30):
        result = daily_report_build(report_date=DAY, fetch=False, send_email=False)

    assert result.providers_not_checked == ["sandbox"]
    assert result.missing_at_provider == 0


def test_a_dry_run_stores_nothing(business):
    result = _build(dry_run=True)

    assert result.missing_internal == 2
    assert result.report_id is None
    assert not DailyReport.objects.exists()


def test_the_email_has_a_text_and_an_html_part(business, settings, mailoutbox):
    settings.DAILY_REPORT_RECIPIENTS = ["finance@example.com", "ops@example.com"]

    result = _build(send_email=True)

    message = mailoutbox[-1]
    html, mimetype = message.alternatives[0]
    assert message.to == ["finance@example.com", "ops@example.com"]
    assert message.subject == "Reconciliation 2026-03-02: 5 settlement exceptions"
    assert mimetype == "text/html"
    assert "po-ghost" in message.body
    assert "<table" not in message.body
    assert "<td>po-ghost</td>" in html
    assert result.emailed_to == settings.DAILY_REPORT_RECIPIENTS
    assert DailyReport.objects.get().emailed_at is not None


def test_the_report_is_built_for_a_utc_day_whatever_the_clock(business):
    with time_machine.travel("2026-03-03T00:30:00+00:00", tick=False):
        result = daily_report_build(
            report_date=DAY,
            statements={"sandbox": StatementInput(STATEMENT, "sandbox.csv")},
            send_email=False,
        )

    assert result.row_count == 10


def test_a_line_we_booked_on_another_day_is_reported_as_such(business):
    with at(30):
        daily_report_build(
            report_date=DAY.replace(day=3),
            statements={"sandbox": StatementInput(STATEMENT, "late.csv")},
            send_email=False,
        )

    item = DailyReportSettlementItem.objects.get(provider_reference="po-1")
    assert (item.kind, item.detail) == (
        "other_day",
        "we booked it 2026-03-02 11:00 UTC",
    )


def test_a_returned_payout_matches_its_payout_return_line(business):
    from finance.services.payouts import payout_return

    with at(7):
        payout_return(payout_id=business["po_1"].pk, via="test", reason="bank")
    statement = (
        STATEMENT + "po-1,payout_return,5000,EUR,returned,2026-03-02T16:00:00Z\n"
    )

    result = _build(statement)

    assert result.matched == 3
    assert ("missing_internal", "po-1") not in _items()


def test_the_admin_shows_the_report_as_a_readable_page(business, client):
    from django.urls import reverse

    from tests.factories import make_user

    _build()
    log_in_verified(client, make_user(is_staff=True, is_superuser=True))
    report = DailyReport.objects.get()

    listing = client.get(reverse("admin:reconciliation_dailyreport_changelist"))
    page = client.get(
        reverse("admin:reconciliation_dailyreport_change", args=[report.pk])
    )

    assert listing.status_code == 200
    body = page.content.decode()
    assert "<td>po-ghost</td>" in body
    assert "missing at the provider" in body
    assert "Open stuck cases" in body


def test_the_report_page_shows_utc_times_whatever_the_operator_zone(business, client):
    from django.urls import reverse

    from tests.factories import make_user

    _build()
    log_in_verified(client, make_user(is_staff=True, is_superuser=True))
    client.cookies["operator_tz"] = "Asia/Tokyo"

    page = client.get(
        reverse(
            "admin:reconciliation_dailyreport_change",
            args=[DailyReport.objects.get().pk],
        )
    )

    assert "2026-03-02 00:00 to 2026-03-03 00:00" in page.content.decode()
