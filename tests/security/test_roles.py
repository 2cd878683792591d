import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.urls import reverse

from security.models import AuditEntry
from security.roles import APPROVER, OPERATOR, ROLES, SECURITY_ADMIN, VIEWER
from security.services import SecurityError, user_set_roles
from tests.factories import make_deposit, make_staff
from tests.security.conftest import log_in

pytestmark = pytest.mark.django_db


def _sync(*args):
    from io import StringIO

    out = StringIO()
    call_command("sync_roles", *args, stdout=out)
    return out.getvalue()


def test_sync_roles_is_a_dry_run_unless_told_to_apply():
    output = _sync()

    assert "Dry run: 5 role(s) differ" in output
    assert not Group.objects.exists()


def test_sync_roles_run_twice_changes_nothing_the_second_time():
    _sync("--apply")
    groups = {g.name: set(g.permissions.all()) for g in Group.objects.all()}
    entries = AuditEntry.objects.count()

    output = _sync("--apply")

    assert "No changes: all 5 roles match." in output
    assert {g.name: set(g.permissions.all()) for g in Group.objects.all()} == groups
    assert AuditEntry.objects.count() == entries
    assert set(groups) == set(ROLES)


def test_sync_roles_takes_away_a_permission_added_by_hand():
    _sync("--apply")
    viewer = Group.objects.get(name=VIEWER)
    viewer.permissions.add(Permission.objects.get(codename="change_customer"))

    output = _sync("--apply")

    assert "-finance.change_customer" in output
    assert not viewer.permissions.filter(codename="change_customer").exists()


def test_the_viewer_role_only_views():
    _sync("--apply")

    codenames = Group.objects.get(name=VIEWER).permissions.values_list(
        "codename", flat=True
    )

    assert codenames
    assert all(codename.startswith("view_") for codename in codenames)


def test_sync_roles_refuses_an_unknown_permission(monkeypatch):
    from finance import roles as finance_roles

    monkeypatch.setitem(finance_roles.GRANTS, VIEWER, ["finance.view_nothing"])

    with pytest.raises(
        CommandError, match=r"unknown permission 'finance\.view_nothing'"
    ):
        _sync("--apply")


def test_nobody_changes_their_own_roles(roles):
    admin_user = make_staff(roles=[SECURITY_ADMIN])

    with pytest.raises(SecurityError, match="own roles"):
        user_set_roles(
            user=admin_user, roles=[OPERATOR], actor=admin_user, reason="why not"
        )


def test_operator_and_approver_together_is_refused(roles):
    with pytest.raises(SecurityError, match="Operator and Approver"):
        user_set_roles(
            user=make_staff(),
            roles=[OPERATOR, APPROVER],
            actor=make_staff(roles=[SECURITY_ADMIN]),
            reason="short-staffed",
        )


def _viewer_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_a_viewer_has_no_add_change_or_delete_permission_anywhere(roles):
    request = _viewer_request(make_staff(roles=[VIEWER]))

    for model, model_admin in admin.site._registry.items():
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request), model
        assert not model_admin.has_delete_permission(request), model


def test_a_viewer_is_offered_no_admin_action_that_changes_anything(roles):
    request = _viewer_request(make_staff(roles=[VIEWER]))

    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_view_or_change_permission(request):
            continue  # the changelist, and so its actions, are out of reach
        for name, (func, _, _) in model_admin.get_actions(request).items():
            # An action a Viewer may run must say it only reads.
            assert getattr(func, "allowed_permissions", ()) == ("view",), (model, name)


def test_a_viewer_is_refused_every_add_form_and_the_privileged_pages(client, roles):
    viewer = make_staff(roles=[VIEWER])
    log_in(client, viewer)

    for model in admin.site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        assert client.post(url, {}).status_code == 403, url
    other = make_staff()
    assert (
        client.get(reverse("admin:auth_user_roles", args=[other.pk])).status_code == 403
    )
    assert client.get(reverse("admin:security_access_review")).status_code == 403


def test_a_viewer_cannot_change_or_delete_any_record(client, roles):
    make_deposit(succeed=True)
    viewer = make_staff(roles=[VIEWER])
    log_in(client, viewer)

    checked = []
    for model in admin.site._registry:
        record = model._default_manager.order_by("pk").first()
        if record is None:
            continue
        opts = model._meta
        info = f"admin:{opts.app_label}_{opts.model_name}"
        change = reverse(f"{info}_change", args=[record.pk])
        delete = reverse(f"{info}_delete", args=[record.pk])
        assert client.post(change, {}).status_code == 403, change
        assert client.post(delete, {"post": "yes"}).status_code == 403, delete
        assert model._default_manager.filter(pk=record.pk).exists()
        checked.append(opts.label)
    # Users, groups, audit entries and devices at least, plus what others add.
    assert len(checked) >= 4, checked
