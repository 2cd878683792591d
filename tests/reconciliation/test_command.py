import io
import json

import pytest
import time_machine
from django.core.management import CommandError, call_command

from reconciliation.models import DailyReport
from tests.reconciliation.conftest import STATEMENT, at

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _run(*args):
    out = io.StringIO()
    call_command("daily_reconciliation_report", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def statement_file(tmp_path):
    path = tmp_path / "sandbox-2026-03-02.csv"
    path.write_text(STATEMENT)
    return path


def test_it_builds_the_day_from_a_settlement_file(business, statement_file):
    with at(30):
        out = _run("--date", "2026-03-02", "--settlement-file", str(statement_file))

    assert "reconciliation 2026-03-02: 10 operations" in out
    assert "missing on our side 2, missing at the provider 1" in out
    statement = DailyReport.objects.get().statements.get()
    assert statement.source_name == "sandbox-2026-03-02.csv"


def test_without_a_date_it_builds_yesterday_in_utc(statement_file):
    with time_machine.travel("2026-03-03T00:10:00+00:00", tick=False):
        out = _run("--settlement-file", f"sandbox={statement_file}", "--json")

    assert json.loads(out)["report_date"] == "2026-03-02"
    assert DailyReport.objects.get().report_date.isoformat() == "2026-03-02"


def test_a_dry_run_prints_and_stores_nothing(business, statement_file):
    with at(30):
        out = _run(
            "--date",
            "2026-03-02",
            "--settlement-file",
            str(statement_file),
            "--dry-run",
        )

    assert out.startswith("dry run, nothing stored: reconciliation 2026-03-02")
    assert not DailyReport.objects.exists()


def test_an_empty_day_says_so():
    with at(30):
        out = _run("--date", "2026-02-01", "--no-fetch")

    assert "no operations at all this day" in out
    assert "not checked: sandbox" in out


def test_an_unreadable_statement_stops_the_command(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("nothing,useful\n")

    with pytest.raises(CommandError, match="the header is"):
        _run("--date", "2026-03-02", "--settlement-file", str(bad))


def test_a_date_that_is_not_a_date_is_refused():
    with pytest.raises(CommandError, match="is not YYYY-MM-DD"):
        _run("--date", "02/03/2026")
