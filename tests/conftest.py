"""Shared test setup.

The suite runs on PostgreSQL when DATABASE_URL names one and on SQLite
otherwise. Tests marked ``postgres`` or ``redis`` skip, with the reason,
where the service is absent, unless OPSADMIN_REQUIRE_SERVICES=1 (as in CI and
the README's test command): then an absent service fails the run.
"""

import os

import pytest
import redis
from django.conf import settings

# The loopback receiver (receiver, committed) serves every app's tests.
pytest_plugins = ["tests.http_receiver"]

REQUIRE_SERVICES = os.environ.get("OPSADMIN_REQUIRE_SERVICES") == "1"


def _on_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_collection_modifyitems(config, items):
    missing = {
        "postgres": None if _on_postgresql() else "DATABASE_URL names no PostgreSQL",
        "redis": None if settings.REDIS_URL else "REDIS_URL is not set",
    }
    needed = {
        reason
        for item in items
        for marker, reason in missing.items()
        if reason and item.get_closest_marker(marker)
    }
    if needed and REQUIRE_SERVICES:
        raise pytest.UsageError(
            "OPSADMIN_REQUIRE_SERVICES=1 but " + "; ".join(sorted(needed))
        )
    for item in items:
        for marker, reason in missing.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def log_in_verified(client, user, *, steps_ahead: int = 0):
    """Log ``user`` in past the admin's second-factor wall, as a person would:
    a session, then a TOTP code (a confirmed device is added if missing).

    ``steps_ahead=1`` for a second session of the same user within one 30 s
    step: a code is accepted once."""
    from django.urls import reverse
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.factories import totp_code

    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        TOTPDevice.objects.create(user=user, name="test phone", confirmed=True)
    client.force_login(user)
    response = client.post(
        reverse("security:verify"),
        {"token": totp_code(user, steps_ahead=steps_ahead)},
    )
    assert response.status_code == 302, "the second factor was not accepted"
    return client


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's admin_client, verified with a second factor."""
    return log_in_verified(client, admin_user)


@pytest.fixture(autouse=True)
def _no_automatic_payouts(settings):
    # A committed withdrawal queues its payout on the broker; only the tests
    # of that flow turn it on (with Celery eager), so no test leaves tasks
    # on a real broker for a worker to run against another database.
    settings.PAYOUT_AUTO_START = False


@pytest.fixture
def clean_locks():
    """No job lock left in this test's Redis database by an earlier test."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("opsadmin:job-lock:*"):
        client.delete(key)
    yield client
    for key in client.scan_iter("opsadmin:job-lock:*"):
        client.delete(key)
