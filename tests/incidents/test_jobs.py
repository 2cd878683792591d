"""The incidents_tick job: scheduled by beat, it advances escalations."""

import pytest
from django.conf import settings

from incidents.services.incidents import incident_declare
from jobs.models import JobRun
from jobs.registry import job_get
from jobs.services import job_run
from tests.incidents.conftest import paged

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]


def test_beat_runs_the_tick_every_thirty_seconds_whatever_the_scheduler():
    entry = settings.CELERY_BEAT_SCHEDULE["job.incidents_tick"]

    assert entry["schedule"] == 30
    assert entry["args"] == ("incidents_tick",)
    assert job_get("incidents_tick").severity == "critical"


def test_a_run_of_the_tick_sends_the_due_steps(
    staffed, receiver, committed, clean_locks
):
    incident_declare(title="Ledger out of balance", level=1)

    with committed():
        run = job_run(name="incidents_tick", trigger="beat")

    assert run.outcome == JobRun.Outcome.SUCCESS
    assert run.counts == {
        "steps": 1,
        "notified": 2,
        "unreached": 0,
        "finished": 0,
        "injects": 0,
        "reminders": 0,
    }
    assert paged(receiver) == [("pagerduty", "PD-p1"), ("slack", "p1")]
