"""Single-flight locks for job runs: Redis when configured, else the database.

A lock is a name, a random token and an expiry. Only the holder of the token
renews or releases it, and a holder that dies simply stops renewing, so the
lock lapses after ``JOB_LOCK_TTL_SECONDS`` and the next run proceeds.
"""

import secrets
import threading
from datetime import timedelta

import redis
import structlog
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

log = structlog.get_logger(__name__)

# Delete or extend the key only while it still holds our token: a holder whose
# lock lapsed and was taken by another run must not release the new holder's.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


class RedisLock:
    def __init__(self, name: str, ttl_seconds: int, token: str | None = None):
        self.key = f"opsadmin:job-lock:{name}"
        self.ttl_ms = ttl_seconds * 1000
        self.token = token or secrets.token_hex(16)
        self.client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5
        )

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.token)

    def held(self) -> bool:
        return self.client.get(self.key) == self.token.encode()


class DatabaseLock:
    """The same contract on the ``Job`` row, for installations without Redis.

    1. Acquire: one conditional UPDATE sets our token where the lock is free
       or expired; exactly one of several racing runs sees a row count of 1.
    2. Renew and release: UPDATE ... WHERE lock_token = ours, so a holder
       whose lock lapsed cannot touch the next holder's.
    """

    def __init__(self, name: str, ttl_seconds: int, token: str | None = None):
        from jobs.models import Job

        self.name = name
        self.ttl = timedelta(seconds=ttl_seconds)
        self.token = token or secrets.token_hex(16)
        self.rows = Job.objects.filter(name=name)
        Job.objects.get_or_create(name=name)

    def acquire(self) -> bool:
        now = timezone.now()
        free = Q(lock_token="") | Q(lock_expires_at__lt=now)
        claimed = self.rows.filter(free).update(
            lock_token=self.token, lock_expires_at=now + self.ttl
        )
        return claimed == 1

    def renew(self) -> bool:
        expires = timezone.now() + self.ttl
        renewed = self.rows.filter(lock_token=self.token).update(
            lock_expires_at=expires
        )
        return renewed == 1

    def release(self) -> None:
        self.rows.filter(lock_token=self.token).update(
            lock_token="", lock_expires_at=None
        )

    def held(self) -> bool:
        return self.rows.filter(
            lock_token=self.token, lock_expires_at__gte=timezone.now()
        ).exists()


def job_lock(name: str, token: str | None = None) -> RedisLock | DatabaseLock:
    ttl = settings.JOB_LOCK_TTL_SECONDS
    if settings.REDIS_URL:
        return RedisLock(name, ttl, token)
    return DatabaseLock(name, ttl, token)


class LockKeeper(threading.Thread):
    """Renews a held lock every third of its lifetime until stopped.

    A failed renewal (the lock lapsed while Redis or the database was
    unreachable, and another run may have taken it) is logged; the running
    job is not interrupted, because Python cannot stop a thread safely. The
    overlap that follows is bounded by the job being safe to run twice.
    """

    def __init__(self, lock, *, job: str):
        super().__init__(name=f"job-lock-keeper-{job}", daemon=True)
        self.lock = lock
        self.job = job
        self.lost = False
        self._stop_event = threading.Event()

    def run(self):
        interval = settings.JOB_LOCK_TTL_SECONDS / 3
        try:
            while not self._stop_event.wait(interval):
                try:
                    renewed = self.lock.renew()
                except Exception:
                    log.exception("job.lock_renew_error", job=self.job)
                    continue
                if not renewed:
                    self.lost = True
                    log.error("job.lock_lost", job=self.job)
        finally:
            connection.close()

    def stop(self):
        self._stop_event.set()
        self.join()
