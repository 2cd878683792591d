"""Retention: old rows go in small primary-key batches, recent ones stay."""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert, Delivery
from finance.models import WebhookDelivery
from jobs import retention
from jobs.models import JobRun
from tests.factories import make_job_run

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = dt.datetime(2026, 6, 1, 3, 17, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=91)
RECENT = NOW - dt.timedelta(days=89)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _webhook(received_at, payload):
    return WebhookDelivery.objects.create(
        provider="sandbox",
        received_at=received_at,
        event_type="payout.paid",
        outcome=WebhookDelivery.Outcome.APPLIED,
        http_status=200,
        payload=payload,
    )


def test_it_purges_old_runs_in_batches_and_keeps_recent_ones():
    old = [make_job_run(started_at=OLD) for _ in range(25)]
    recent = [make_job_run(started_at=RECENT) for _ in range(3)]

    counts = retention.retention_purge(batch_size=10)

    assert counts["job_runs_purged"] == 25
    assert counts["job_runs_batches"] == 3
    assert set(JobRun.objects.values_list("pk", flat=True)) == {r.pk for r in recent}
    assert not JobRun.objects.filter(pk__in=[r.pk for r in old]).exists()


def test_each_batch_deletes_one_primary_key_range():
    for _ in range(4):
        make_job_run(started_at=OLD)

    with CaptureQueriesContext(connection) as queries:
        retention.retention_purge(batch_size=2)

    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    jobrun_deletes = [sql for sql in deletes if '"jobs_jobrun"' in sql]
    assert len(jobrun_deletes) == 2
    assert all('"jobs_jobrun"."id" >=' in sql for sql in jobrun_deletes)
    assert all('"jobs_jobrun"."id" <=' in sql for sql in jobrun_deletes)


def test_it_keeps_a_run_that_is_still_running_however_old():
    running = make_job_run(started_at=OLD, outcome="running")

    retention.retention_purge()

    assert JobRun.objects.filter(pk=running.pk).exists()


def test_it_clears_log_lines_before_it_deletes_the_run():
    run = make_job_run(
        started_at=NOW - dt.timedelta(days=15), log="line", traceback="tb"
    )

    counts = retention.retention_purge()

    run.refresh_from_db()
    assert (run.log, run.traceback) == ("", "")
    assert counts["job_run_logs_purged"] == 1


def test_it_clears_old_webhook_payloads_but_keeps_the_deliveries():
    old = _webhook(NOW - dt.timedelta(days=31), {"id": "evt_1"})
    recent = _webhook(NOW - dt.timedelta(days=29), {"id": "evt_2"})

    counts = retention.retention_purge()

    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.payload is None
    assert recent.payload == {"id": "evt_2"}
    assert counts["webhook_payloads_purged"] == 1
    assert retention.retention_purge()["webhook_payloads_purged"] == 0


def test_it_purges_finished_alert_deliveries_and_old_resolved_alerts():
    alert = Alert.objects.create(
        key="job.nightly.failed",
        summary="s",
        severity="error",
        source="w",
        route="page",
        status="resolved",
        resolved_at=NOW - dt.timedelta(days=181),
    )
    for status in ("delivered", "failed", "pending"):
        Delivery.objects.create(
            alert=None,
            channel="slack",
            action="notify",
            message={},
            status=status,
            created_at=OLD,
        )

    counts = retention.retention_purge()

    assert list(Delivery.objects.values_list("status", flat=True)) == ["pending"]
    assert counts["alert_deliveries_purged"] == 2
    assert not Alert.objects.filter(pk=alert.pk).exists()


def test_it_takes_the_period_from_settings(settings):
    settings.RETENTION_DAYS = {**settings.RETENTION_DAYS, "job_runs": 100}
    make_job_run(started_at=OLD)

    assert retention.retention_purge()["job_runs_purged"] == 0


def test_another_app_adds_a_target_that_may_not_be_installed(monkeypatch):
    monkeypatch.setattr(retention, "_TARGETS", {})
    retention.retention_register(
        name="not_installed",
        model="nowhere.Thing",
        date_field="closed_at",
        default_days=180,
    )
    retention.retention_register(
        name="failed_runs",
        model="jobs.JobRun",
        date_field="started_at",
        default_days=30,
        condition=Q(outcome="failed"),
    )
    make_job_run(started_at=OLD, outcome="failed")
    make_job_run(started_at=OLD, outcome="success")

    counts = retention.retention_purge()

    assert counts == {"failed_runs_purged": 1, "failed_runs_batches": 1}
    assert list(JobRun.objects.values_list("outcome", flat=True)) == ["success"]


def test_the_command_is_a_dry_run_unless_told_to_apply(capsys):
    make_job_run(started_at=OLD)

    call_command("purge_expired")
    assert "job_runs_expired=1" in capsys.readouterr().out
    assert JobRun.objects.count() == 1

    call_command("purge_expired", "--apply")
    assert "job_runs_purged=1" in capsys.readouterr().out
    assert JobRun.objects.count() == 0
