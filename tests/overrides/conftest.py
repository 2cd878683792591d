import pytest
from django.core.cache import cache
from django.urls import reverse

from security.roles import APPROVER, OPERATOR, VIEWER
from security.services import roles_sync
from tests.factories import make_staff


@pytest.fixture
def roles(db):
    roles_sync(apply=True)


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Failure counters live in Redis and usernames repeat between runs.
    cache.clear()


@pytest.fixture
def doer(roles):
    return make_staff(roles=[OPERATOR])


@pytest.fixture
def approver(roles):
    return make_staff(roles=[APPROVER])


@pytest.fixture
def viewer(roles):
    return make_staff(roles=[VIEWER])


def detail_url(override) -> str:
    return reverse("admin:overrides_overriderequest_change", args=[override.pk])


def approve_url(override) -> str:
    return reverse("admin:overrides_overriderequest_approve", args=[override.pk])


def approve_data(override) -> dict:
    """What the review page's Approve form posts."""
    return {
        "content_hash": override.content_hash,
        "target_version": override.target_version,
    }


def request_of(client, user, path="/"):
    """A request carrying ``client``'s session, as the middleware builds it.

    For calling a service directly with the session a person has in their
    browser (logged in, verified, step-up age and all).
    """
    from django.test import RequestFactory
    from django_otp.middleware import OTPMiddleware

    request = RequestFactory().post(path)
    request.session = client.session
    request.user = user
    return OTPMiddleware(lambda r: r)(request)
