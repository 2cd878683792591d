import pytest
import time_machine

from jobs.models import JobRun
from jobs.services import job_run

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]


def _run_for_yesterday():
    with time_machine.travel("2026-03-03T02:30:00+00:00", tick=False):
        return job_run(name="daily_reconciliation_report", trigger="manual")


def test_the_scheduled_run_builds_yesterdays_report(
    business,
    provider_api,
    clean_locks,
):
    run = _run_for_yesterday()

    assert run.outcome == JobRun.Outcome.SUCCESS
    assert run.counts["report_date"] == "2026-03-02"
    assert (run.counts["row_count"], run.counts["missing_internal"]) == (10, 2)


def test_a_day_without_operations_fails_the_output_check(
    provider_api,
    clean_locks,
):
    run = _run_for_yesterday()

    assert run.outcome == JobRun.Outcome.FAILED
    assert run.error == (
        "output check: the report of 2026-03-02 has no operations at all"
    )


def test_an_unreachable_provider_fails_the_run(settings, clean_locks):
    settings.PROVIDERS = {
        "sandbox": {
            "base_url": "http://127.0.0.1:9/",
            "api_key": "k",
            "webhook_secret": "s",
        }
    }

    run = _run_for_yesterday()

    assert run.outcome == JobRun.Outcome.FAILED
    assert run.error.startswith("StatementUnavailable: the sandbox statement")
