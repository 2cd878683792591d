import csv
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from security.roles import APPROVER, OPERATOR, SECURITY_ADMIN, VIEWER
from security.selectors import access_review
from tests.factories import make_staff
from tests.security.conftest import log_in

pytestmark = pytest.mark.django_db


def _findings(username):
    return next(row for row in access_review() if row.username == username).findings


def _review(tmp_path, *args):
    out = StringIO()
    call_command("access_review", "--csv", str(tmp_path / "r.csv"), *args, stdout=out)
    return out.getvalue()


def test_strict_fails_on_a_dormant_superuser_without_mfa(tmp_path):
    make_staff(
        username="root",
        superuser=True,
        enrolled=False,
        last_login=timezone.now() - timedelta(days=120),
    )

    with pytest.raises(CommandError, match="finding"):
        _review(tmp_path, "--strict")

    assert _findings("root") == ["no MFA", "dormant over 90 days", "superuser"]


def test_strict_passes_when_every_account_is_clean(tmp_path, roles):
    make_staff(username="ok", roles=[VIEWER], last_login=timezone.now())

    output = _review(tmp_path, "--strict")

    assert "1 account(s), 0 finding(s)" in output


def test_it_writes_the_table_and_the_csv(tmp_path, roles):
    make_staff(username="op", roles=[OPERATOR], last_login=timezone.now())

    output = _review(tmp_path)

    rows = list(csv.reader((tmp_path / "r.csv").open()))
    assert rows[0][0] == "username"
    assert rows[1][:2] == ["op", OPERATOR]
    assert "op" in output


def test_it_flags_direct_permissions_and_separation_of_duties(roles):
    user = make_staff(username="both", roles=[OPERATOR, APPROVER])
    user.user_permissions.add(Permission.objects.get(codename="change_customer"))

    findings = _findings("both")

    assert "direct permissions" in findings
    assert "separation of duties: Operator + Approver" in findings


def test_an_account_that_never_logged_in_is_dormant_from_its_creation():
    make_staff(username="new", date_joined=timezone.now() - timedelta(days=91))

    assert "dormant over 90 days" in _findings("new")


def test_the_review_is_a_page_in_the_admin(client, roles):
    make_staff(username="root", superuser=True, enrolled=False)
    log_in(client, make_staff(roles=[SECURITY_ADMIN]))

    page = client.get(reverse("admin:security_access_review"))
    index = client.get(reverse("admin:index"))
    download = client.get(reverse("admin:security_access_review_csv"))

    assert page.status_code == 200
    assert "no MFA; superuser" in page.content.decode()
    assert reverse("admin:security_access_review") in index.content.decode()
    assert b"root" in download.content
