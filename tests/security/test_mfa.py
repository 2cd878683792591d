import re
from base64 import b32encode
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from security.models import AuditEntry, BackupCode, BackupCodeDevice
from security.services import mfa_reset
from tests.factories import make_staff, totp_code
from tests.security.conftest import log_in

pytestmark = pytest.mark.django_db

_CODES = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


def _enrol(client, user):
    """Walk through enrolment; return the backup codes shown at the end."""
    client.force_login(user)
    page = client.get(reverse("security:enrol"))
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    code = str(TOTP(device.bin_key).token()).zfill(6)
    done = client.post(reverse("security:enrol"), {"token": code})
    assert done.status_code == 200
    return page, done, _CODES.findall(done.content.decode())


def test_it_shows_a_server_drawn_qr_code_and_the_secret_while_enrolling(client):
    user = make_staff(enrolled=False)

    page, _, _ = _enrol(client, user)

    html = page.content.decode()
    device = TOTPDevice.objects.get(user=user)
    secret = b32encode(device.bin_key).decode()
    assert "<svg" in html
    assert "<img" not in html.split('id="content"')[1]
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in html


def test_it_confirms_the_device_and_shows_ten_backup_codes_once(client):
    user = make_staff(enrolled=False)

    _, _, codes = _enrol(client, user)

    assert TOTPDevice.objects.get(user=user).confirmed
    assert len(codes) == 10
    assert client.get(reverse("admin:index")).status_code == 200
    again = client.get(reverse("security:enrol"))
    assert again.status_code == 302
    assert codes[0] not in client.get(reverse("admin:index")).content.decode()
    assert AuditEntry.objects.filter(action="mfa.enrolled", actor=user).exists()


def test_it_stores_backup_codes_only_as_salted_hashes(client):
    user = make_staff(enrolled=False)

    _, _, codes = _enrol(client, user)

    digests = list(BackupCode.objects.values_list("digest", flat=True))
    assert len(digests) == 10
    for code in codes:
        assert all(code.replace("-", "") not in digest for digest in digests)
    assert len({digest.split("$")[0] for digest in digests}) == 10


def test_it_refuses_a_wrong_enrolment_code(client):
    user = make_staff(enrolled=False)
    client.force_login(user)
    client.get(reverse("security:enrol"))

    response = client.post(reverse("security:enrol"), {"token": "000000"})

    assert response.status_code == 200
    assert not TOTPDevice.objects.get(user=user).confirmed
    assert client.get(reverse("admin:index"))["Location"].startswith(
        reverse("security:enrol")
    )


def test_a_backup_code_logs_in_once(client):
    user = make_staff(enrolled=False)
    _, _, codes = _enrol(client, user)
    client.logout()

    client.force_login(user)
    first = client.post(reverse("security:verify"), {"token": codes[0]})
    client.logout()
    client.force_login(user)
    second = client.post(reverse("security:verify"), {"token": codes[0]})

    assert first.status_code == 302
    assert second.status_code == 200
    assert BackupCodeDevice.objects.get(user=user).remaining() == 9


def test_it_logs_in_with_password_then_code(client):
    user = make_staff(username="ada")

    start = client.post(
        reverse("admin:login") + "?next=/admin/",
        {"username": "ada", "password": "correct horse battery staple"},
    )
    wall = client.get(start["Location"])
    verified = client.post(
        wall["Location"], {"token": totp_code(user), "next": "/admin/"}
    )

    assert wall["Location"].startswith(reverse("security:verify"))
    assert verified["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"auth.login", "mfa.verified"} <= actions


def test_it_never_shows_a_totp_key_in_the_admin(client):
    admin_user = make_staff(superuser=True)
    log_in(client, admin_user)
    device = TOTPDevice.objects.get(user=admin_user)

    page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert device.key not in html
    assert b32encode(device.bin_key).decode() not in html


def test_a_verified_session_loses_access_when_its_device_is_removed(client):
    user = make_staff(superuser=True)
    log_in(client, user)

    TOTPDevice.objects.filter(user=user).delete()

    response = client.get(reverse("admin:index"))
    assert response["Location"].startswith(reverse("security:enrol"))


def test_it_refuses_a_code_replayed_within_its_time_step(client):
    user = make_staff()
    with time_machine.travel("2026-12-01 10:00:05", tick=False):
        code = totp_code(user)
        log_in(client, user)
        client.logout()
        client.force_login(user)

        response = client.post(reverse("security:verify"), {"token": code})

    assert response.status_code == 200


def test_a_user_stopped_at_the_wall_can_log_out(client):
    client.force_login(make_staff())

    response = client.post(reverse("security:logout"))

    assert response["Location"] == reverse("admin:login")
    assert "_auth_user_id" not in client.session


def _joined_hours_ago(user, hours):
    user.date_joined = timezone.now() - timedelta(hours=hours)
    user.save(update_fields=["date_joined"])
    return user


def test_an_account_past_its_enrolment_window_cannot_enrol(client, settings):
    settings.SECURITY_ENROLMENT_WINDOW_HOURS = 72
    user = _joined_hours_ago(make_staff(enrolled=False), 73)
    client.force_login(user)

    page = client.get(reverse("security:enrol"))
    posted = client.post(reverse("security:enrol"), {"token": "123456"})
    admin_page = client.get(reverse("admin:index"), follow=True)

    assert page.status_code == posted.status_code == 403
    assert 'id="enrolment-closed"' in page.content.decode()
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert admin_page.status_code == 403
    assert 'id="enrolment-closed"' in admin_page.content.decode()


def test_an_account_enrols_within_its_window(client, settings):
    settings.SECURITY_ENROLMENT_WINDOW_HOURS = 72
    user = _joined_hours_ago(make_staff(enrolled=False), 71)

    _, _, codes = _enrol(client, user)

    assert len(codes) == 10


def test_a_security_admins_mfa_reset_reopens_enrolment_for_a_window(client, settings):
    settings.SECURITY_ENROLMENT_WINDOW_HOURS = 72
    user = _joined_hours_ago(make_staff(), 24 * 30)
    mfa_reset(user=user, actor=make_staff(), reason="lost phone, OPS-77")
    client.force_login(user)

    settings.SECURITY_ENROLMENT_WINDOW_HOURS = 0  # as if the window had passed
    too_late = client.get(reverse("security:enrol"))
    settings.SECURITY_ENROLMENT_WINDOW_HOURS = 72
    _, _, codes = _enrol(client, user)

    assert too_late.status_code == 403
    assert len(codes) == 10
