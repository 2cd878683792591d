"""One run of a job: what is recorded, and what it alerts."""

import datetime as dt
import os

import pytest
import structlog
from django.core.management import CommandError, call_command

from alerts.models import Alert
from jobs.models import JobRun, MaintenanceWindow
from jobs.services import job_run

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]

log = structlog.get_logger(__name__)


def _works():
    log.info("nightly.swept", cases=3)
    return {"opened": 2, "closed": 1}


def _breaks():
    raise ValueError("provider statement missing")


class Outcome:
    """What the test job does next: succeed or raise."""

    fail = True

    def __call__(self):
        if self.fail:
            raise ValueError("provider statement missing")
        return {"rows": 4}


@pytest.fixture(autouse=True)
def _locks(clean_locks):
    return clean_locks


def test_it_records_a_successful_run(register):
    register(func=_works)

    run = job_run(name="nightly", trigger="cron")

    assert run.outcome == JobRun.Outcome.SUCCESS
    assert run.counts == {"opened": 2, "closed": 1}
    assert run.trigger == "cron"
    assert run.pid == os.getpid()
    assert run.host
    assert run.finished_at >= run.started_at
    assert run.duration_ms is not None


def test_it_keeps_the_log_lines_of_the_run(register):
    register(func=_works)

    run = job_run(name="nightly", trigger="cron")

    events = [line.split("event=")[1].split()[0] for line in run.log.splitlines()]
    assert events == ["job.started", "nightly.swept", "job.finished"]
    assert "cases=3" in run.log


def test_it_records_the_error_and_traceback_of_a_failure(register):
    register(func=_breaks)

    run = job_run(name="nightly", trigger="beat")

    assert run.outcome == JobRun.Outcome.FAILED
    assert run.error == "ValueError: provider statement missing"
    assert 'raise ValueError("provider statement missing")' in run.traceback
    assert "event=job.raised" in run.log


def test_it_fails_a_run_whose_output_check_objects(register):
    register(
        func=lambda: {"rows": 0},
        output_check=lambda result: None if result["rows"] else "the report is empty",
    )

    run = job_run(name="nightly", trigger="beat")

    assert run.outcome == JobRun.Outcome.FAILED
    assert run.error == "output check: the report is empty"


def test_it_takes_counts_from_a_result_object(register):
    class Result:
        counts = {"stuck": 5}

    register(func=Result)

    assert job_run(name="nightly", trigger="beat").counts == {"stuck": 5}


def test_a_failing_job_triggers_one_alert_and_its_next_success_resolves_it(
    register, receiver, committed
):
    outcome = Outcome()
    register(func=outcome)

    with committed():
        job_run(name="nightly", trigger="beat")
    with committed():
        job_run(name="nightly", trigger="beat")
    outcome.fail = False
    with committed():
        job_run(name="nightly", trigger="beat")

    events = receiver.bodies("/pagerduty")
    assert [(e["event_action"], e["dedup_key"]) for e in events] == [
        ("trigger", "job.nightly.failed"),
        ("resolve", "job.nightly.failed"),
    ]
    assert events[0]["payload"]["summary"] == (
        "Job nightly failed (1 in a row): ValueError: provider statement missing"
    )
    assert events[0]["payload"]["class"] == "job_failed"
    assert events[0]["payload"]["custom_details"]["consecutive_failures"] == 1
    assert len(receiver.bodies("/slack")) == 2
    alert = Alert.objects.get()
    assert (alert.status, alert.trigger_count) == ("resolved", 2)


def test_it_alerts_only_after_the_stated_number_of_failures_in_a_row(
    register, receiver, committed
):
    register(func=_breaks, alert_after=3)

    for _ in range(2):
        with committed():
            job_run(name="nightly", trigger="beat")
    assert receiver.bodies("/pagerduty") == []

    with committed():
        job_run(name="nightly", trigger="beat")
    (event,) = receiver.bodies("/pagerduty")
    assert event["payload"]["custom_details"]["consecutive_failures"] == 3


def test_a_maintenance_window_mutes_the_alert_but_records_it(
    register, receiver, committed
):
    register(func=_breaks)
    MaintenanceWindow.objects.create(
        job="nightly",
        starts_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        ends_at=dt.datetime(2100, 1, 1, tzinfo=dt.UTC),
        reason="provider migration",
    )

    with committed():
        job_run(name="nightly", trigger="beat")

    assert receiver.requests == []
    alert = Alert.objects.get(key="job.nightly.failed")
    assert alert.muted_reason.endswith(": provider migration")


def test_a_window_for_another_job_does_not_mute(register, receiver, committed):
    register(func=_breaks)
    MaintenanceWindow.objects.create(
        job="other",
        starts_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        ends_at=dt.datetime(2100, 1, 1, tzinfo=dt.UTC),
        reason="other work",
    )

    with committed():
        job_run(name="nightly", trigger="beat")

    assert len(receiver.bodies("/pagerduty")) == 1


def test_it_pings_the_heartbeat_url_on_success_and_fail_on_failure(
    register, receiver, settings
):
    settings.JOB_HEARTBEAT_URLS = {"nightly": receiver.url + "/hc/nightly"}
    outcome = Outcome()
    register(func=outcome)

    job_run(name="nightly", trigger="beat")
    outcome.fail = False
    job_run(name="nightly", trigger="beat")

    paths = [r["path"] for r in receiver.requests if r["path"].startswith("/hc/")]
    assert paths == ["/hc/nightly/fail", "/hc/nightly"]


def test_the_command_exits_non_zero_when_the_job_fails(register):
    register(func=_breaks)

    with pytest.raises(CommandError, match="provider statement missing"):
        call_command("run_job", "nightly", "--trigger", "cron")

    assert JobRun.objects.get().trigger == "cron"


def test_the_command_says_when_another_copy_is_running(register, capsys):
    from jobs.locks import job_lock

    register(func=_works)
    other = job_lock("nightly")
    assert other.acquire()

    call_command("run_job", "nightly", "--trigger", "cron")

    other.release()
    assert "another copy is running, nothing done" in capsys.readouterr().out
    assert JobRun.objects.get().outcome == JobRun.Outcome.SKIPPED_LOCKED


def test_the_command_refuses_an_unknown_job(register):
    with pytest.raises(CommandError, match="no job named 'nope'"):
        call_command("run_job", "nope")


@pytest.fixture
def heard():
    """What ``job_failed`` receivers are told, for one test."""
    from jobs.signals import job_failed

    events = []

    def listener(sender, **kwargs):
        events.append(kwargs)

    job_failed.connect(listener)
    yield events
    job_failed.disconnect(listener)


def test_it_tells_job_failed_receivers_once_the_failure_alerts(register, heard):
    register(func=_breaks, severity="critical", alert_after=2)

    job_run(name="nightly", trigger="beat")
    assert heard == []
    run = job_run(name="nightly", trigger="beat")

    (event,) = heard
    assert event["job"].severity == "critical"
    assert event["run"] == run
    assert event["consecutive_failures"] == 2
    assert event["muted"] is False


def test_a_receiver_that_raises_never_hides_the_run_or_its_alert(register):
    from jobs.signals import job_failed

    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    job_failed.connect(broken)
    register(func=_breaks)
    try:
        run = job_run(name="nightly", trigger="beat")
    finally:
        job_failed.disconnect(broken)

    assert run.outcome == JobRun.Outcome.FAILED
    assert Alert.objects.get().key == "job.nightly.failed"
