"""The dead man's switch, hung runs and runs whose process died."""

import datetime as dt
import threading

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from alerts.models import Alert
from jobs.locks import job_lock
from jobs.models import JobRun, MaintenanceWindow
from jobs.services import job_run, jobs_check, jobs_sync
from tests.factories import make_job_run

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
PERIOD_AND_GRACE = dt.timedelta(hours=1, minutes=10)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture(autouse=True)
def _locks(clean_locks):
    return clean_locks


def _events(receiver):
    return [(e["event_action"], e["dedup_key"]) for e in receiver.bodies("/pagerduty")]


def test_a_job_that_never_ran_alerts_past_period_plus_grace(
    register, receiver, committed
):
    register()
    with time_machine.travel(T0, tick=False) as clock:
        jobs_sync()

        clock.shift(PERIOD_AND_GRACE)
        with committed():
            assert jobs_check()["overdue"] == 0
        assert receiver.requests == []

        clock.shift(SECOND)
        with committed():
            assert jobs_check()["overdue"] == 1

    (event,) = receiver.bodies("/pagerduty")
    assert event["dedup_key"] == "job.nightly.missed"
    assert event["payload"]["class"] == "job_missed"
    assert event["payload"]["custom_details"]["last_success"] == "never"
    assert event["payload"]["custom_details"]["last_run_outcome"] == "never ran"


def test_it_counts_from_the_last_success_and_resolves_on_the_next(
    register, receiver, committed
):
    register()
    with time_machine.travel(T0, tick=False) as clock:
        job_run(name="nightly", trigger="beat")
        clock.shift(PERIOD_AND_GRACE + SECOND)
        with committed():
            jobs_check()
        with committed():
            job_run(name="nightly", trigger="beat")

    assert _events(receiver) == [
        ("trigger", "job.nightly.missed"),
        ("resolve", "job.nightly.missed"),
    ]


def test_failed_runs_do_not_count_as_a_success(register, receiver, committed):
    register()
    with time_machine.travel(T0, tick=False) as clock:
        jobs_sync()
        clock.shift(PERIOD_AND_GRACE)
        make_job_run(outcome="failed")
        clock.shift(SECOND)
        with committed():
            assert jobs_check()["overdue"] == 1


def test_a_maintenance_window_mutes_a_missed_run_alert(register, receiver, committed):
    register()
    MaintenanceWindow.objects.create(
        job="",
        starts_at=T0,
        ends_at=T0 + dt.timedelta(hours=3),
        reason="database failover drill",
    )
    with time_machine.travel(T0, tick=False) as clock:
        jobs_sync()
        clock.shift(PERIOD_AND_GRACE + SECOND)
        with committed():
            jobs_check()

    assert receiver.requests == []
    assert Alert.objects.get(key="job.nightly.missed").muted


def test_a_run_whose_process_died_is_closed_as_timed_out_and_alerts(
    register, receiver, committed
):
    register()
    with time_machine.travel(T0, tick=False) as clock:
        run = make_job_run(outcome="running", lock_token="gone")
        clock.shift(dt.timedelta(minutes=5) + SECOND)
        with committed():
            counts = jobs_check()

    assert counts["timed_out"] == 1
    run.refresh_from_db()
    assert run.outcome == JobRun.Outcome.TIMED_OUT
    assert _events(receiver) == [("trigger", "job.nightly.failed")]


def test_the_heartbeat_command_alerts_and_exits_non_zero_when_overdue(
    register, receiver, committed
):
    register()
    with time_machine.travel(T0, tick=False) as clock:
        jobs_sync()
        clock.shift(PERIOD_AND_GRACE + SECOND)
        with committed(), pytest.raises(CommandError, match="overdue=1"):
            call_command("check_job_heartbeats")

    assert _events(receiver) == [("trigger", "job.nightly.missed")]


def test_the_heartbeat_command_pings_its_own_heartbeat_url(
    register, receiver, settings, capsys
):
    settings.JOB_HEARTBEAT_URLS = {"check_job_heartbeats": receiver.url + "/hc/check"}
    register()

    call_command("check_job_heartbeats")

    assert "scheduled jobs ok: jobs=1 overdue=0" in capsys.readouterr().out
    assert [r["path"] for r in receiver.requests] == ["/hc/check"]


@pytest.mark.django_db(transaction=True)
def test_a_hung_run_alerts_while_it_hangs(register, receiver):
    started, release = threading.Event(), threading.Event()

    def hang():
        started.set()
        release.wait(10)
        return {"finished": 1}

    register(func=hang)

    def run():
        try:
            job_run(name="nightly", trigger="beat")
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert started.wait(10), "the run never started"
        running = JobRun.objects.get(outcome="running")
        assert job_lock("nightly", token=running.lock_token).held()

        late = running.started_at + dt.timedelta(minutes=5) + SECOND
        assert jobs_check(now=late)["hung"] == 1
        assert _events(receiver) == [("trigger", "job.nightly.hung")]
        assert JobRun.objects.get(pk=running.pk).outcome == "running"
    finally:
        release.set()
        worker.join(10)

    assert _events(receiver) == [
        ("trigger", "job.nightly.hung"),
        ("resolve", "job.nightly.hung"),
    ]
