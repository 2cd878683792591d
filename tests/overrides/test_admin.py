"""Who sees which page and button; the roles the workflow needs."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from security.models import AuditEntry
from security.roles import APPROVER, OPERATOR, VIEWER
from tests.conftest import log_in_verified as log_in
from tests.factories import make_override, make_stuck_payout
from tests.overrides.conftest import detail_url

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ADD = "admin:overrides_overriderequest_add"


def _grants(role):
    return set(
        Group.objects.get(name=role)
        .permissions.filter(content_type__app_label="overrides")
        .values_list("codename", flat=True)
    )


def test_each_role_holds_its_side_of_the_workflow(roles):
    assert _grants(OPERATOR) == {
        "view_overriderequest",
        "add_overriderequest",
        "withdraw_overriderequest",
    }
    assert _grants(APPROVER) == {
        "view_overriderequest",
        "approve_overriderequest",
        "reject_overriderequest",
    }
    assert _grants(VIEWER) == {"view_overriderequest"}


def test_an_approver_cannot_open_a_request(approver):
    client = log_in(Client(), approver)

    assert client.get(reverse(ADD)).status_code == 403


def test_the_add_page_lists_the_catalogue(doer):
    client = log_in(Client(), doer)

    page = client.get(reverse(ADD)).content.decode()

    assert "Mark the payout failed and return the funds to the wallet" in page
    assert "Post a balancing adjustment between the wallet and suspense" in page


def test_the_doer_is_offered_withdraw_and_never_approve(doer):
    override = make_override(target=make_stuck_payout(), doer=doer)
    client = log_in(Client(), doer)

    page = client.get(detail_url(override)).content.decode()

    assert 'id="withdraw"' in page
    assert 'id="approve"' not in page
    assert 'id="reject"' not in page
    assert not AuditEntry.objects.filter(action="override.viewed").exists()


def test_a_viewer_reads_the_request_and_can_press_nothing(doer, viewer):
    override = make_override(target=make_stuck_payout(), doer=doer)
    client = log_in(Client(), viewer)

    page = client.get(detail_url(override))
    rejected = client.post(
        reverse("admin:overrides_overriderequest_reject", args=[override.pk]),
        {"reason": "no"},
    )
    withdrawn = client.post(
        reverse("admin:overrides_overriderequest_withdraw", args=[override.pk]),
        {"reason": "no"},
    )

    assert page.status_code == 200
    for button in ('id="approve"', 'id="reject"', 'id="withdraw"', 'id="execute"'):
        assert button not in page.content.decode()
    assert (rejected.status_code, withdrawn.status_code) == (403, 403)
    override.refresh_from_db()
    assert override.status == "submitted"


def test_the_approver_rejects_from_the_review_page(doer, approver):
    override = make_override(target=make_stuck_payout(), doer=doer)
    client = log_in(Client(), approver)

    client.post(
        reverse("admin:overrides_overriderequest_reject", args=[override.pk]),
        {"reason": "retry first: the provider still says pending"},
    )

    override.refresh_from_db()
    assert override.status == "rejected"
    assert override.closed_by == approver


def test_the_changelist_links_the_weekly_count(doer):
    make_override(target=make_stuck_payout(), doer=doer)
    client = log_in(Client(), doer)

    changelist = client.get(reverse("admin:overrides_overriderequest_changelist"))
    weekly = client.get(reverse("admin:overrides_overriderequest_weekly"))

    assert (
        reverse("admin:overrides_overriderequest_weekly") in changelist.content.decode()
    )
    assert weekly.status_code == 200
    assert len(weekly.context["weeks"]) == 12


def test_a_new_request_shows_the_earlier_ones_for_the_same_target(doer):
    payout = make_stuck_payout()
    earlier = make_override(target=payout, doer=doer)
    client = log_in(Client(), doer)

    page = client.get(
        reverse(ADD) + f"?target_kind=payout&target_id={payout.pk}&action=payout_fail"
    )

    assert list(page.context["earlier"]) == [earlier]
