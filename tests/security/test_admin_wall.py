"""No admin URL answers without a verified second factor.

The URLs are read from the admin site itself, so every page that any app
registers later (ModelAdmin views, custom get_urls views) is walked too.
"""

import re

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, resolve, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import make_staff, make_user
from tests.security.conftest import log_in

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

_ROUTE_PARAM = re.compile(r"<(?:\w+:)?\w+>")
_REGEX_ALTERNATIVES = re.compile(r"\(\?P<\w+>([^)|]+)(?:\|[^)]*)?\)")
_REGEX_GROUP = re.compile(r"\((?:\?P<\w+>)?[^)]*\)")


def _sample(pattern) -> str:
    """A concrete path for one URL pattern: "1" for each parameter."""
    text = str(pattern.pattern)
    if hasattr(pattern.pattern, "_route"):
        return _ROUTE_PARAM.sub("1", text)
    text = text.lstrip("^").replace("\\Z", "").rstrip("$")
    text = _REGEX_ALTERNATIVES.sub(lambda m: m.group(1), text)
    return _REGEX_GROUP.sub("1", text)


def _walk(patterns, prefix="/admin/"):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + _sample(pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + _sample(pattern), pattern


def admin_urls():
    """Every URL of the admin site but login and logout, with its pattern."""
    urls = []
    for path, pattern in _walk(admin.site.get_urls()):
        if pattern.name in ("login", "logout"):
            continue
        match = resolve(path)
        assert match.namespace == "admin", path
        # A badly made sample would land on the catch-all view and test nothing.
        assert match.url_name == pattern.name, (path, pattern.name)
        urls.append(path)
    return urls


def test_it_walks_every_model_admin_and_custom_view():
    urls = admin_urls()

    for model in admin.site._registry:
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        assert base in urls
        assert base + "add/" in urls
        assert base + "1/change/" in urls
        assert base + "1/delete/" in urls
        assert base + "1/history/" in urls
    assert "/admin/security/access-review/" in urls
    assert "/admin/auth/user/1/roles/" in urls


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_sends_anonymous_visitors_to_the_login_page(client, method):
    for url in admin_urls():
        response = getattr(client, method)(url)

        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_walls_a_password_only_superuser_from_every_admin_url(client, method):
    superuser = make_staff(superuser=True)
    # Logged in by some other view: a password, no second factor.
    client.force_login(superuser)

    for url in admin_urls():
        response = getattr(client, method)(url)

        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("security:verify")), url


def test_it_sends_a_staff_user_without_a_device_to_enrolment(client):
    client.force_login(make_staff(enrolled=False))

    for url in admin_urls():
        response = client.get(url)

        assert response["Location"].startswith(reverse("security:enrol")), url


def test_it_treats_an_unconfirmed_device_as_no_device(client):
    user = make_staff(enrolled=False)
    TOTPDevice.objects.create(user=user, name="half-done", confirmed=False)
    client.force_login(user)

    response = client.get(reverse("admin:index"))

    assert response["Location"].startswith(reverse("security:enrol"))


def test_it_lets_a_verified_superuser_in(client):
    superuser = make_staff(superuser=True)
    log_in(client, superuser)

    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 200


def test_the_site_itself_refuses_an_unverified_session(client, settings):
    settings.MIDDLEWARE = [
        m
        for m in settings.MIDDLEWARE
        if m != "security.middleware.AdminSecondFactorMiddleware"
    ]
    client.force_login(make_staff(superuser=True))

    response = client.get(reverse("admin:auth_user_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_it_keeps_non_staff_users_out_even_with_a_device(client):
    user = make_user()
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)

    response = client.get(reverse("admin:index"))

    assert response["Location"].startswith(reverse("admin:login"))


def test_the_shared_admin_client_fixture_is_past_the_wall(admin_client):
    assert admin_client.get(reverse("admin:index")).status_code == 200


def test_no_history_version_page_accepts_a_post(client):
    log_in(client, make_staff(superuser=True))
    # A demoted superuser: its first version still has the flag set.
    target = make_staff(username="demoted", superuser=True)
    old_version = target.history.earliest()
    target.is_superuser = False
    target.save()
    history_pages = [url for url in admin_urls() if "/history/1/" in url]
    assert history_pages

    for url in history_pages:
        assert client.post(url, {}).status_code == 403, url
    url = reverse(
        "admin:auth_user_simple_history", args=[target.pk, old_version.history_id]
    )
    response = client.post(url, {"username": "demoted", "is_active": "on"})

    assert response.status_code == 403
    target.refresh_from_db()
    assert not target.is_superuser
