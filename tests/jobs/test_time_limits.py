"""A queued run carries its job's max_run_time as Celery time limits.

The message is published to a real Redis broker and read back from it, so
the test sees what a worker would receive.
"""

import json
from datetime import timedelta

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from jobs.models import JobRun
from jobs.services import job_run
from jobs.tasks import HARD_LIMIT_MARGIN_SECONDS, run_job
from opsadmin.celery import app

pytestmark = pytest.mark.redis

QUEUE = "test-jobs-time-limits"


@pytest.fixture
def published():
    """Publish run_job messages to a queue of our own; return their headers."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(QUEUE)

    def publish(*args, **options):
        with app.connection_for_write(settings.REDIS_URL) as conn:
            run_job.apply_async(args=args, queue=QUEUE, connection=conn, **options)
        message = json.loads(client.rpop(QUEUE))
        return message["headers"]

    yield publish
    client.delete(QUEUE)


def test_a_run_gets_its_jobs_limits(register, published):
    register(name="nightly", max_run_time=timedelta(minutes=5))

    headers = published("nightly")

    assert headers["timelimit"] == [300 + HARD_LIMIT_MARGIN_SECONDS, 300]


def test_limits_given_by_the_caller_win(register, published):
    register(name="nightly", max_run_time=timedelta(minutes=5))

    headers = published("nightly", soft_time_limit=7, time_limit=9)

    assert headers["timelimit"] == [9, 7]


def test_an_unknown_job_is_published_without_limits(register, published):
    headers = published("no_such_job")

    assert headers["timelimit"] == [None, None]


@pytest.mark.django_db
def test_a_run_stopped_at_its_soft_limit_is_a_recorded_failure(register):
    def hangs():
        raise SoftTimeLimitExceeded()

    register(name="nightly", func=hangs)

    run = job_run(name="nightly", trigger=JobRun.Trigger.MANUAL)

    assert run.outcome == JobRun.Outcome.FAILED
    assert run.error.startswith("SoftTimeLimitExceeded")
