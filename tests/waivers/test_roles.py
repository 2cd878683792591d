import pytest
from django.contrib.auth.models import Group

from security.roles import SECURITY_ADMIN, VIEWER
from security.services import roles_sync

pytestmark = pytest.mark.django_db


def _perms(role):
    group = Group.objects.get(name=role)
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
        if p.content_type.app_label == "waivers"
    }


def test_security_admins_own_the_register_and_viewers_only_read_it():
    roles_sync(apply=True)

    assert {"waivers.approve_waiver", "waivers.close_waiver"} <= _perms(SECURITY_ADMIN)
    assert _perms(VIEWER) == {"waivers.view_waiver"}


def test_syncing_the_roles_twice_changes_nothing_the_second_time():
    roles_sync(apply=True)

    assert not any(change.changed for change in roles_sync(apply=True))
