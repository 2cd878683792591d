from datetime import date

import pytest

from reconciliation.models import DailyReport
from reconciliation.services import daily_report_build
from reconciliation.settlement import (
    StatementError,
    StatementUnavailable,
    fetch_statement,
    statement_parse,
)
from tests.reconciliation.conftest import DAY, HEADER, STATEMENT, at


def test_good_lines_are_parsed_into_minor_units_and_utc():
    statement = statement_parse(
        "\ufeff" + HEADER + "po-1,payout,5000,EUR,settled,2026-03-02T11:00:00+00:00\n"
    )

    (line,) = statement.lines
    assert (line.line_number, line.provider_reference, line.amount) == (2, "po-1", 5000)
    assert line.settled_at.isoformat() == "2026-03-02T11:00:00+00:00"
    assert statement.malformed == []


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("po-1,payout,-5,EUR,settled,2026-03-02T11:00:00Z", "amount '-5' is not"),
        ("po-1,payout,0,EUR,settled,2026-03-02T11:00:00Z", "amount '0' is not"),
        ("po-1,payout,5,eur,settled,2026-03-02T11:00:00Z", "currency 'eur' is not"),
        ("po-1,payout,5,EUR,settled,2026-03-02T13:00:00+02:00", "is not in UTC"),
        ("po-1,payout,5,EUR,settled,2026-03-02T11:00:00", "is not in UTC"),
        ("po-1,payout,5,EUR,settled,yesterday", "is not ISO 8601"),
        ("po-1,payout,5,EUR,,2026-03-02T11:00:00Z", "status is empty"),
        (",payout,5,EUR,settled,2026-03-02T11:00:00Z", "provider_reference is"),
        ("po-1,transfer,5,EUR,settled,2026-03-02T11:00:00Z", "type 'transfer'"),
        ("po-1,payout,5,EUR,settled,2026-03-02T11:00:00Z,extra", "7 fields"),
    ],
)
def test_a_malformed_line_is_reported_with_its_reason(row, reason):
    statement = statement_parse(HEADER + row + "\n")

    (bad,) = statement.malformed
    assert (bad.line_number, statement.lines) == (2, [])
    assert reason in bad.reason


def test_the_same_reference_and_type_twice_is_a_duplicate():
    statement = statement_parse(
        HEADER
        + "po-1,payout,5,EUR,settled,2026-03-02T11:00:00Z\n"
        + "po-1,payout_return,5,EUR,returned,2026-03-02T12:00:00Z\n"
        + "po-1,payout,5,EUR,settled,2026-03-02T11:00:00Z\n"
    )

    assert len(statement.lines) == 2
    assert [(m.line_number, m.reason) for m in statement.malformed] == [
        (4, "duplicate of line 2")
    ]


def test_a_statement_without_the_expected_header_is_refused():
    with pytest.raises(StatementError, match="expected 'provider_reference,type"):
        statement_parse("ref,type,amount\n")


def test_the_statement_is_fetched_from_the_provider_over_http(provider_api):
    text = fetch_statement("sandbox", DAY)

    assert text == STATEMENT
    assert provider_api == [
        ("/v1/settlements/2026-03-02.csv", "Bearer sk_test_statement")
    ]


def test_a_day_the_provider_does_not_have_is_unavailable(provider_api):
    with pytest.raises(StatementUnavailable, match="could not be fetched"):
        fetch_statement("sandbox", date(2026, 3, 1))


def test_an_unreachable_provider_is_unavailable(settings):
    settings.PROVIDERS = {
        "sandbox": {
            "base_url": "http://127.0.0.1:9/",
            "api_key": "k",
            "webhook_secret": "s",
        }
    }

    with pytest.raises(StatementUnavailable, match="could not be fetched"):
        fetch_statement("sandbox", DAY)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_report_matches_a_fetched_statement(provider_api, business):
    with at(30):
        result = daily_report_build(report_date=DAY, send_email=False)

    statement = DailyReport.objects.get().statements.get()
    assert (statement.source, statement.source_name) == ("fetched", "sandbox API")
    assert (result.missing_internal, result.amount_mismatches) == (2, 1)
