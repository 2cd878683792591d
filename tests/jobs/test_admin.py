"""The jobs admin: health at a glance, run history, run now."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from jobs.models import Job, JobRun, MaintenanceWindow
from jobs.services import jobs_sync
from tests.conftest import log_in_verified
from tests.factories import make_job_run, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def operator(client):
    user = make_user(is_staff=True, is_superuser=True)
    log_in_verified(client, user)
    return user


@pytest.fixture(autouse=True)
def _locks(clean_locks):
    return clean_locks


def _row(html: str, name: str) -> str:
    start = html.index(f">{name}</a>")
    return html[start : html.index("</tr>", start)]


def test_it_marks_a_failing_job_red(client, operator, register):
    register(name="nightly")
    register(name="hourly")
    make_job_run(job="nightly", outcome="success")
    make_job_run(job="nightly", outcome="failed")
    make_job_run(job="hourly", outcome="success")

    html = client.get(reverse("admin:jobs_job_changelist")).content.decode()

    assert "#cf222e" in _row(html, "nightly")
    assert ">failing<" in _row(html, "nightly")
    assert ">ok<" in _row(html, "hourly")
    assert '<td class="field-failures">1</td>' in _row(html, "nightly")


def test_it_marks_an_overdue_job_and_shows_when_it_was_due(client, operator, register):
    register(name="nightly")
    with time_machine.travel(T0, tick=False) as clock:
        jobs_sync()
        clock.shift(dt.timedelta(hours=2))
        html = client.get(reverse("admin:jobs_job_changelist")).content.decode()

    row = _row(html, "nightly")
    assert ">overdue<" in row
    assert "#cf222e" in row
    assert ">never<" in row


def test_run_now_records_a_manual_run_by_the_operator(
    client, operator, register, receiver, django_capture_on_commit_callbacks
):
    register(name="nightly", func=lambda: {"rows": 1})
    jobs_sync()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:jobs_job_changelist"),
            {
                "action": "run_now",
                "_selected_action": [Job.objects.get(name="nightly").pk],
            },
            follow=True,
        )

    run = JobRun.objects.get()
    assert (run.trigger, run.outcome) == ("manual", "success")
    assert run.requested_by == operator
    assert "Queued 1 job(s): nightly." in response.content.decode()


def test_the_run_list_filters_by_outcome(client, operator):
    make_job_run(job="nightly", outcome="failed", error="ValueError: x")
    make_job_run(job="hourly", outcome="success")

    url = reverse("admin:jobs_jobrun_changelist") + "?outcome__exact=failed"
    shown = client.get(url).context["cl"].result_list

    assert [run.job for run in shown] == ["nightly"]


def test_a_maintenance_window_records_who_created_it(client, operator):
    client.post(
        reverse("admin:jobs_maintenancewindow_add"),
        {
            "job": "nightly",
            "starts_at_0": "2026-03-02",
            "starts_at_1": "09:00:00",
            "ends_at_0": "2026-03-02",
            "ends_at_1": "11:00:00",
            "reason": "provider maintenance",
        },
    )

    window = MaintenanceWindow.objects.get()
    assert window.created_by == operator
    assert window.history.get().history_user == operator


def test_a_run_shows_its_error_traceback_and_log_lines(client, operator):
    run = make_job_run(
        outcome="failed",
        error="ValueError: x",
        traceback="Traceback (most recent call last): <frame>",
        log="event=job.started",
    )

    url = reverse("admin:jobs_jobrun_change", args=[run.pk])
    html = client.get(url).content.decode()

    assert "<pre>Traceback (most recent call last): &lt;frame&gt;</pre>" in html
    assert "<pre>event=job.started</pre>" in html
