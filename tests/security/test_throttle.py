import pytest
from django.test import override_settings
from django.urls import reverse

from security.models import AuditEntry
from tests.factories import make_staff, totp_code

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

PASSWORD = "correct horse battery staple"


def _login(client, username, password, ip="198.51.100.7"):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
    )


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(client):
    make_staff(username="ada")
    for _ in range(5):
        _login(client, "ada", "wrong")

    response = _login(client, "ada", PASSWORD)

    assert response.status_code == 200
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="auth.login_failed").count() == 5
    assert AuditEntry.objects.filter(after__locked=True).count() == 1


def test_the_lock_holds_for_any_login_view_that_authenticates(client):
    make_staff(username="ada")
    for _ in range(5):
        _login(client, "ada", "wrong")

    assert not client.login(username="ada", password=PASSWORD)


@override_settings(SECURITY_THROTTLE_MAX_FAILURES_PER_ADDRESS=3)
def test_failures_across_accounts_lock_the_address(client):
    make_staff(username="ada")
    for name in ("x", "y", "z"):
        _login(client, name, "wrong")

    assert "Too many" in _login(client, "ada", PASSWORD).content.decode()
    assert _login(client, "ada", PASSWORD, ip="192.0.2.1").status_code == 302


def test_wrong_codes_count_against_the_account(client):
    user = make_staff(username="ada")
    client.force_login(user)
    for _ in range(5):
        client.post(reverse("security:verify"), {"token": "000000"})

    response = client.post(reverse("security:verify"), {"token": totp_code(user)})

    assert response.status_code == 200
    assert AuditEntry.objects.filter(action="mfa.failed").count() == 5
