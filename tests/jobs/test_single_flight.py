"""Two copies of one job at once: one works, the other says so and leaves.

Real threads, each with its own PostgreSQL connection, against real Redis
(and against the database lock used without Redis).
"""

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection

from jobs.locks import DatabaseLock, RedisLock, job_lock
from jobs.models import JobRun
from jobs.services import job_run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
]


class SlowWork:
    """A job that holds its run open until the test lets it finish."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()
        self.done = 0

    def __call__(self):
        self.started.set()
        assert self.release.wait(10), "the test never released the job"
        self.done += 1
        return {"done": self.done}


def _in_thread(target, results):
    def run():
        try:
            results.append(target())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _two_concurrent_runs(register):
    work = SlowWork()
    register(func=work)
    results = []
    first = _in_thread(lambda: job_run(name="nightly", trigger="beat"), results)
    assert work.started.wait(10)
    second = _in_thread(lambda: job_run(name="nightly", trigger="manual"), results)
    second.join(10)
    work.release.set()
    first.join(10)
    return work, results


def test_two_concurrent_runs_do_one_runs_work(register, clean_locks):
    work, results = _two_concurrent_runs(register)

    assert work.done == 1
    assert sorted(run.outcome for run in results) == ["skipped_locked", "success"]
    skipped = JobRun.objects.get(outcome="skipped_locked")
    assert skipped.trigger == "manual"
    assert clean_locks.get("opsadmin:job-lock:nightly") is None


def test_two_concurrent_runs_do_one_runs_work_without_redis(register, settings):
    settings.REDIS_URL = None

    work, results = _two_concurrent_runs(register)

    assert work.done == 1
    assert sorted(run.outcome for run in results) == ["skipped_locked", "success"]


def test_a_redis_lock_lapses_on_its_own(clean_locks, settings):
    lock = RedisLock("nightly", ttl_seconds=60)
    assert lock.acquire()

    # A holder that dies stops renewing; Redis drops the key at the TTL.
    assert 0 < clean_locks.pttl("opsadmin:job-lock:nightly") <= 60_000


def test_a_redis_lock_is_renewed_by_its_holder_only(clean_locks):
    holder = RedisLock("nightly", ttl_seconds=60)
    assert holder.acquire()
    clean_locks.pexpire("opsadmin:job-lock:nightly", 1_000)

    assert not RedisLock("nightly", ttl_seconds=60).renew()
    assert clean_locks.pttl("opsadmin:job-lock:nightly") <= 1_000
    assert holder.renew()
    assert clean_locks.pttl("opsadmin:job-lock:nightly") > 1_000


def test_a_redis_lock_is_released_only_by_its_holder(clean_locks):
    lapsed = RedisLock("nightly", ttl_seconds=60)
    assert lapsed.acquire()
    clean_locks.delete("opsadmin:job-lock:nightly")  # as if its TTL ran out
    holder = RedisLock("nightly", ttl_seconds=60)
    assert holder.acquire()

    lapsed.release()
    assert not lapsed.renew()

    assert holder.held()
    assert not RedisLock("nightly", ttl_seconds=60).acquire()


def test_a_database_lock_lapses_when_its_holder_stops_renewing(settings):
    settings.REDIS_URL = None
    start = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        dead = job_lock("nightly")
        assert isinstance(dead, DatabaseLock)
        assert dead.acquire()
        assert not job_lock("nightly").acquire()

        clock.shift(dt.timedelta(seconds=settings.JOB_LOCK_TTL_SECONDS + 1))
        successor = job_lock("nightly")
        assert successor.acquire()

        dead.release()
        assert successor.held()
