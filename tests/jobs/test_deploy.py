"""The Kubernetes manifests say what the runbook promises."""

import re
from pathlib import Path

import pytest
from django.conf import settings

K8S = Path(settings.BASE_DIR) / "deploy" / "k8s"


def _documents(name):
    return [doc for doc in (K8S / name).read_text().split("\n---\n") if doc.strip()]


def _cronjobs():
    return [doc for doc in _documents("cronjobs.yaml") if "kind: CronJob" in doc]


@pytest.mark.parametrize(
    "setting",
    [
        "concurrencyPolicy: Forbid",
        "startingDeadlineSeconds:",
        "successfulJobsHistoryLimit:",
        "failedJobsHistoryLimit:",
        "activeDeadlineSeconds:",
        "timeZone: Etc/UTC",
        "restartPolicy: Never",
    ],
)
def test_every_cronjob_states(setting):
    assert all(setting in doc for doc in _cronjobs())


def test_the_issue_5_jobs_run_through_run_job_as_cron():
    commands = re.findall(r"command: \[(.*)\]", "\n".join(_cronjobs()))

    run_job = '"python", "manage.py", "run_job", '
    cron = ', "--trigger", "cron"'
    assert run_job + '"detect_stuck_finance_jobs"' + cron in commands
    assert run_job + '"daily_reconciliation_report"' + cron in commands
    assert '"python", "manage.py", "check_job_heartbeats"' in commands


def test_there_is_exactly_one_beat_and_it_is_recreated():
    (beat,) = _documents("beat.yaml")

    assert "replicas: 1\n" in beat
    assert "type: Recreate" in beat


def test_the_web_pods_are_probed():
    web = _documents("web.yaml")[0]

    assert "path: /healthz" in web
    assert "path: /readyz" in web
