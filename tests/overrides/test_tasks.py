import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from jobs.models import JobRun
from overrides.models import OverrideRequest
from overrides.services import override_request_approve
from security.models import AuditEntry
from tests.conftest import log_in_verified as log_in
from tests.factories import make_override, make_stuck_payout
from tests.overrides.conftest import approve_data, request_of

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]

SUBMITTED_AT = "2026-12-01 09:00:00"
LAST_SECOND = "2026-12-01 10:59:59"
EXPIRY = "2026-12-01 11:00:00"


def _status(override):
    return OverrideRequest.objects.get(pk=override.pk).status


def _run_job():
    """The scheduled job, through the command beat and cron both reach."""
    call_command("run_job", "override_requests_expire")
    run = JobRun.objects.filter(job="override_requests_expire").latest("id")
    assert run.outcome == "success", run.error
    return run.counts["expired"]


def test_the_sweep_leaves_a_request_alone_until_its_deadline(doer):
    with time_machine.travel(SUBMITTED_AT, tick=False):
        override = make_override(target=make_stuck_payout(), doer=doer)
    with time_machine.travel(LAST_SECOND, tick=False):
        expired = _run_job()

    assert expired == 0
    assert _status(override) == "submitted"


def test_the_sweep_expires_a_request_at_its_deadline_once(doer):
    with time_machine.travel(SUBMITTED_AT, tick=False):
        override = make_override(target=make_stuck_payout(), doer=doer)
    with time_machine.travel(EXPIRY, tick=False):
        first = _run_job()
        second = _run_job()

    assert (first, second) == (1, 0)
    assert _status(override) == "expired"
    entry = AuditEntry.objects.get(action="override.expired")
    assert entry.actor is None
    assert entry.before == {"status": "submitted"}


def test_an_approved_request_that_never_ran_expires_too(doer, approver):
    with time_machine.travel(SUBMITTED_AT, tick=False):
        override = make_override(target=make_stuck_payout(), doer=doer)
        client = log_in(Client(), approver)
        override_request_approve(
            override_id=override.pk,
            approver=approver,
            request=request_of(client, approver),
            **approve_data(override),
        )
    with time_machine.travel(EXPIRY, tick=False):
        _run_job()

    assert _status(override) == "expired"


def test_the_sweep_is_scheduled_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["job.override_requests_expire"]

    assert (entry["task"], entry["args"]) == (
        "jobs.run_job",
        ("override_requests_expire",),
    )
    assert entry["schedule"] == 60
