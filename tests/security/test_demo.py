import re
from base64 import b32decode

import pytest
from django.urls import reverse
from django_otp.oath import TOTP

from security.demo import enrol_demo_user
from security.roles import OPERATOR
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_a_demo_user_gets_a_role_and_logs_in_with_what_was_printed(client):
    user = make_user(username="demo-operator")

    lines = enrol_demo_user(user, OPERATOR)

    assert [g.name for g in user.groups.all()] == [OPERATOR]
    assert user.is_staff
    backup = re.search(r"backup codes: ([a-z0-9-]+)", "\n".join(lines)).group(1)
    client.force_login(user)
    assert client.post(reverse("security:verify"), {"token": backup}).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_printed_key_is_the_one_the_authenticator_needs(client):
    user = make_user()
    lines = enrol_demo_user(user, OPERATOR)
    key = lines[1].split("authenticator key: ")[1]

    client.force_login(user)
    code = str(TOTP(b32decode(key)).token()).zfill(6)
    response = client.post(reverse("security:verify"), {"token": code})

    assert response.status_code == 302


def test_it_is_refused_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(RuntimeError, match="production"):
        enrol_demo_user(make_user(), OPERATOR)
