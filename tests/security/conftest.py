import pytest
from django.urls import reverse

from security.services import roles_sync
from tests.factories import totp_code


@pytest.fixture
def roles(db):
    roles_sync(apply=True)


def log_in(client, user):
    """Log in with the password and then a code, as a person would."""
    client.force_login(user)
    response = client.post(reverse("security:verify"), {"token": totp_code(user)})
    assert response.status_code == 302, "the second factor was not accepted"
    return client


@pytest.fixture
def verified_client(client):
    return lambda user: log_in(client, user)


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Failure counters live in the cache (Redis when REDIS_URL is set) and
    # usernames repeat between runs.
    from django.core.cache import cache

    cache.clear()
