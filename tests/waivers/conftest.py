import pytest

from security.roles import SECURITY_ADMIN
from security.services import roles_sync
from tests.factories import make_staff
from tests.production import good_secrets


@pytest.fixture
def production_secrets(settings):
    """Settings whose every required secret is present and production-grade.

    Returns the values, so a test can change one and see it noticed.
    """
    values = good_secrets()
    settings.SECRET_KEY = values["SECRET_KEY"]
    settings.SECRET_FINGERPRINT_KEY = values["SECRET_FINGERPRINT_KEY"]
    settings.DATABASE_URL = (
        f"postgres://opsadmin:{values['DATABASE_PASSWORD']}@db.internal:5432/opsadmin"
    )
    settings.REDIS_URL = f"redis://:{values['REDIS_PASSWORD']}@redis.internal:6379/0"
    settings.EMAIL_HOST_PASSWORD = values["EMAIL_HOST_PASSWORD"]
    settings.PROVIDERS = {
        "acme": {
            "base_url": "https://api.acme.invalid/",
            "api_key": values["PROVIDER_ACME_API_KEY"],
            "webhook_secret": values["PROVIDER_ACME_WEBHOOK_SECRET"],
        }
    }
    settings.PROVIDER_WEBHOOK_SECRETS_PREVIOUS = {}
    settings.SLACK_WEBHOOK_URL = values["SLACK_WEBHOOK_URL"]
    settings.PAGERDUTY_ROUTING_KEY = values["PAGERDUTY_ROUTING_KEY"]
    return values


@pytest.fixture
def roles(db):
    roles_sync(apply=True)


@pytest.fixture
def security_admin(roles):
    return make_staff(roles=[SECURITY_ADMIN])


@pytest.fixture
def approver(roles):
    """A second Security admin: approves what the first one owns."""
    return make_staff(roles=[SECURITY_ADMIN])
