from datetime import timedelta

import pytest
import redis
from django.conf import settings

from jobs import registry


@pytest.fixture
def register(monkeypatch):
    """Declare jobs for one test only, in an otherwise empty registry."""
    monkeypatch.setattr(registry, "_JOBS", {})

    def declare(name="nightly", func=lambda: {}, **fields):
        values = {
            "period": timedelta(hours=1),
            "grace": timedelta(minutes=10),
            "max_run_time": timedelta(minutes=5),
        }
        values.update(fields)
        return registry.job_register(name=name, func=func, **values)

    return declare


@pytest.fixture
def clean_locks():
    """No job lock left in this test's Redis database by an earlier test."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("opsadmin:job-lock:*"):
        client.delete(key)
    yield client
    for key in client.scan_iter("opsadmin:job-lock:*"):
        client.delete(key)
