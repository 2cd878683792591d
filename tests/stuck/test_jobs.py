from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts.models import Alert
from jobs.models import JobRun
from jobs.services import job_run
from stuck.jobs import NEW_CASES_ALERT
from tests.factories import make_deposit

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _run(hours):
    with time_machine.travel(T0 + timedelta(hours=hours), tick=False):
        return job_run(name="detect_stuck_finance_jobs", trigger="manual")


def test_a_scheduled_run_records_the_detection_counts(clean_locks):
    with time_machine.travel(T0, tick=False):
        make_deposit()

    run = _run(1)

    assert run.outcome == JobRun.Outcome.SUCCESS
    assert (run.counts["opened"], run.counts["open_cases"]) == (1, 1)
    assert run.counts["by_rule"]["deposit pending"] == 1


def test_a_burst_of_new_cases_pages_and_a_quiet_run_resolves(
    settings,
    clean_locks,
):
    settings.STUCK_ALERT_NEW_CASES_THRESHOLD = 1
    with time_machine.travel(T0, tick=False):
        make_deposit()
        make_deposit()

    _run(1)
    alert = Alert.objects.get(key=NEW_CASES_ALERT)
    assert alert.status == Alert.Status.TRIGGERED
    assert alert.summary.startswith("2 new stuck finance cases in one detection run")

    _run(2)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
