"""Shared test setup.

The suite runs on PostgreSQL when DATABASE_URL names one and on SQLite
otherwise. Tests marked ``postgres`` or ``redis`` skip, with the reason,
where the service is absent, unless OPSADMIN_REQUIRE_SERVICES=1 (as in CI and
the README's test command): then an absent service fails the run.
"""

import os

import pytest
from django.conf import settings

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
