import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from security.models import AuditEntry
from security.roles import OPERATOR, SECURITY_ADMIN, VIEWER
from tests.factories import make_staff, totp_code
from tests.security.conftest import log_in

pytestmark = pytest.mark.django_db

LOGIN_TIME = "2026-12-01 09:00:00"
STALE_TIME = "2026-12-01 09:05:30"  # 330 s later: past STEP_UP_MAX_AGE_SECONDS


@pytest.fixture
def security_admin(roles):
    return make_staff(roles=[SECURITY_ADMIN])


def _step_up(client, response, user):
    """Answer the step-up prompt that ``response`` redirected to."""
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security:step_up"))
    return client.post(response["Location"], {"token": totp_code(user)})


def _replay(client, continue_page):
    """Press "Continue" on the page that re-submits the kept POST."""
    form = continue_page.context["pending"]
    data = {name: values for name, values in form}
    return client.post(continue_page.context["next"], data)


def test_a_role_change_with_a_fresh_login_goes_straight_through(client, security_admin):
    user = make_staff(roles=[VIEWER])
    log_in(client, security_admin)

    response = client.post(
        reverse("admin:auth_user_roles", args=[user.pk]),
        {"roles": [OPERATOR], "reason": "joined on-call, TICKET-1"},
    )

    assert response.status_code == 302
    assert [g.name for g in user.groups.all()] == [OPERATOR]


def test_a_role_change_with_a_stale_login_asks_for_a_code_then_applies(
    client, security_admin
):
    user = make_staff(roles=[VIEWER])
    url = reverse("admin:auth_user_roles", args=[user.pk])
    with time_machine.travel(LOGIN_TIME, tick=False):
        log_in(client, security_admin)
    with time_machine.travel(STALE_TIME, tick=False):
        prompt = client.post(url, {"roles": [OPERATOR], "reason": "TICKET-2"})
        assert [g.name for g in user.groups.all()] == [VIEWER]

        continue_page = _step_up(client, prompt, security_admin)
        assert continue_page.status_code == 200
        done = _replay(client, continue_page)

    assert done.status_code == 302
    assert [g.name for g in user.groups.all()] == [OPERATOR]
    entry = AuditEntry.objects.get(action="role.assigned")
    assert entry.before["roles"] == [VIEWER]
    assert entry.after["roles"] == [OPERATOR]
    assert entry.reason == "TICKET-2"
    assert AuditEntry.objects.filter(action="mfa.step_up").exists()


def test_a_wrong_step_up_code_changes_nothing(client, security_admin):
    user = make_staff(roles=[VIEWER])
    url = reverse("admin:auth_user_roles", args=[user.pk])
    with time_machine.travel(LOGIN_TIME, tick=False):
        log_in(client, security_admin)
    with time_machine.travel(STALE_TIME, tick=False):
        prompt = client.post(url, {"roles": [OPERATOR], "reason": "TICKET-3"})
        answer = client.post(prompt["Location"], {"token": "123456"})
        again = client.post(url, {"roles": [OPERATOR], "reason": "TICKET-3"})

    assert answer.status_code == 200
    assert again["Location"].startswith(reverse("security:step_up"))
    assert [g.name for g in user.groups.all()] == [VIEWER]


def test_an_mfa_reset_with_a_stale_login_asks_for_a_code_then_resets(
    client, security_admin
):
    user = make_staff(roles=[VIEWER])
    changelist = reverse("admin:auth_user_changelist")
    with time_machine.travel(LOGIN_TIME, tick=False):
        log_in(client, security_admin)
    with time_machine.travel(STALE_TIME, tick=False):
        prompt = client.post(
            changelist,
            {"action": "reset_mfa", "index": 0, ACTION_CHECKBOX_NAME: [user.pk]},
        )
        assert TOTPDevice.objects.filter(user=user).exists()
        confirm_page = _replay(client, _step_up(client, prompt, security_admin))
        assert confirm_page.status_code == 200
        done = client.post(
            changelist,
            {
                "action": "reset_mfa",
                ACTION_CHECKBOX_NAME: [user.pk],
                "reason": "phone lost, identity checked by video call, TICKET-4",
            },
        )

    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    entry = AuditEntry.objects.get(action="mfa.reset")
    assert entry.actor == security_admin
    assert entry.target_id == str(user.pk)


def test_nobody_resets_their_own_devices(client, security_admin):
    log_in(client, security_admin)

    client.post(
        reverse("admin:auth_user_changelist"),
        {
            "action": "reset_mfa",
            ACTION_CHECKBOX_NAME: [security_admin.pk],
            "reason": "trying",
        },
    )

    assert TOTPDevice.objects.filter(user=security_admin).exists()
    assert not AuditEntry.objects.filter(action="mfa.reset").exists()


def test_a_stale_password_form_is_not_kept_for_replay(client, security_admin):
    user = make_staff(roles=[VIEWER])
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    with time_machine.travel(LOGIN_TIME, tick=False):
        log_in(client, security_admin)
    with time_machine.travel(STALE_TIME, tick=False):
        prompt = client.post(
            url,
            {
                "password1": "a new long passphrase",
                "password2": "a new long passphrase",
            },
        )

    assert prompt["Location"].startswith(reverse("security:step_up"))
    assert "security_step_up_pending" not in client.session


def test_a_stale_session_is_asked_for_a_code_before_the_user_form(
    client, security_admin
):
    user = make_staff(roles=[VIEWER])
    url = reverse("admin:auth_user_change", args=[user.pk])
    with time_machine.travel(LOGIN_TIME, tick=False):
        log_in(client, security_admin)
        assert client.get(url).status_code == 200
    with time_machine.travel(STALE_TIME, tick=False):
        prompt = client.get(url)
        back = client.post(prompt["Location"], {"token": totp_code(security_admin)})
        again = client.get(back["Location"])

    assert prompt["Location"].startswith(reverse("security:step_up"))
    assert back["Location"] == url
    assert again.status_code == 200
