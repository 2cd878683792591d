import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from stuck.models import StuckCase
from tests.factories import make_deposit

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _run(*args):
    out = io.StringIO()
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        call_command("detect_stuck_finance_jobs", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def stuck_deposit():
    with time_machine.travel(T0, tick=False):
        return make_deposit()


def test_it_records_cases_and_says_what_it_did(stuck_deposit):
    out = _run()

    assert out.splitlines()[0] == (
        "1 open stuck cases (1 new, 0 reopened, 0 closed), "
        "0 past the payout SLA (0 new)"
    )
    assert "       1  deposit pending" in out
    assert StuckCase.objects.count() == 1


def test_dry_run_prints_without_writing(stuck_deposit):
    out = _run("--dry-run")

    assert out.startswith("dry run, nothing written: 1 open stuck cases")
    assert not StuckCase.objects.exists()


def test_json_output_carries_the_alerting_fields(stuck_deposit, settings):
    settings.STUCK_ALERT_NEW_CASES_THRESHOLD = 0

    result = json.loads(_run("--json"))

    assert (result["new_cases"], result["threshold_exceeded"]) == (1, True)
    assert result["checked_at"] == "2026-03-02T10:00:00+00:00"
