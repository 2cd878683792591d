import pytest

from security.services import roles_sync
from tests.conftest import log_in_verified


@pytest.fixture
def roles(db):
    roles_sync(apply=True)


log_in = log_in_verified


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Failure counters live in the cache (Redis when REDIS_URL is set) and
    # usernames repeat between runs.
    from django.core.cache import cache

    cache.clear()
