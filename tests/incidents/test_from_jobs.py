"""Incidents declared by failing scheduled jobs."""

import pytest

from incidents.models import Incident
from jobs.models import MaintenanceWindow
from jobs.services import job_run

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]


def _breaks():
    raise ValueError("settlement statement missing")


@pytest.fixture(autouse=True)
def _locks(clean_locks):
    return clean_locks


def test_a_failing_critical_job_declares_a_sev2_incident(register):
    register(func=_breaks, severity="critical")

    run = job_run(name="nightly", trigger="beat")

    incident = Incident.objects.get()
    assert incident.severity.name == "Sev2"
    assert incident.source == "job"
    assert incident.source_key == "job:nightly"
    assert incident.title == (
        "Scheduled job nightly is failing: ValueError: settlement statement missing"
    )
    assert f"last run {run.pk}" in incident.summary
    assert incident.pages.get().status == "active"


def test_further_failures_add_to_the_same_incident(register):
    register(func=_breaks, severity="critical")

    job_run(name="nightly", trigger="beat")
    job_run(name="nightly", trigger="beat")

    incident = Incident.objects.get()
    assert incident.timeline.filter(kind="update").count() == 1


def test_a_job_of_an_unlisted_severity_only_alerts(register):
    register(func=_breaks, severity="error")

    job_run(name="nightly", trigger="beat")

    assert not Incident.objects.exists()


def test_the_levels_come_from_settings(register, settings):
    settings.INCIDENTS_JOB_SEVERITY_LEVELS = {"error": 3}
    register(func=_breaks, severity="error")

    job_run(name="nightly", trigger="beat")

    assert Incident.objects.get().severity.name == "Sev3"


def test_a_maintenance_window_declares_nothing(register):
    from datetime import timedelta

    from django.utils import timezone

    register(func=_breaks, severity="critical")
    MaintenanceWindow.objects.create(
        job="nightly",
        starts_at=timezone.now() - timedelta(minutes=5),
        ends_at=timezone.now() + timedelta(hours=1),
        reason="provider maintenance",
    )

    job_run(name="nightly", trigger="beat")

    assert not Incident.objects.exists()
