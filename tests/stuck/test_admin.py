from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse

from finance.services.deposits import deposit_succeed
from stuck.models import StuckCase, StuckCaseActivity, StuckRule
from stuck.services import stuck_case_note, stuck_detect
from tests.conftest import log_in_verified
from tests.factories import make_deposit, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHANGELIST = reverse("admin:stuck_stuckcase_changelist")


@pytest.fixture
def cases():
    """Two stuck deposits, one of which has since succeeded (closed case)."""
    with time_machine.travel(T0, tick=False):
        stays, leaves = make_deposit(), make_deposit()
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        stuck_detect()
        deposit_succeed(deposit_id=leaves.pk, via="test", reason="settled")
        stuck_detect()
    return StuckCase.objects.get(item_id=stays.pk), StuckCase.objects.get(
        item_id=leaves.pk
    )


def _operator(*perms):
    user = make_user(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="stuck", codename__in=perms)
    )
    return user


def test_the_list_shows_open_cases_unless_asked_for_closed_ones(client, cases):
    open_case, closed_case = cases
    log_in_verified(client, _operator("view_stuckcase"))

    default = client.get(CHANGELIST)
    closed = client.get(CHANGELIST, {"status": "closed"})

    assert list(default.context["cl"].queryset) == [open_case]
    assert list(closed.context["cl"].queryset) == [closed_case]
    # Badges are classes from a stylesheet: the CSP drops inline styles.
    body = default.content.decode()
    assert "style-src 'self'" in default["Content-Security-Policy"]
    assert "stuck/admin.css" in body
    assert '<span class="stuck-badge stuck-over3d">' in body


def test_the_age_band_filter_uses_the_age_at_the_last_run(client, cases):
    log_in_verified(client, _operator("view_stuckcase"))

    assert client.get(CHANGELIST, {"age": "1to6h"}).context["cl"].result_count == 1
    assert client.get(CHANGELIST, {"age": "over3d"}).context["cl"].result_count == 0


def test_an_operator_acknowledges_assigns_and_notes_from_the_case_page(client, cases):
    case, _ = cases
    operator, colleague = _operator("work_stuckcase"), make_user(is_staff=True)
    log_in_verified(client, operator)

    response = client.post(
        reverse("admin:stuck_stuckcase_change", args=[case.pk]),
        {
            "acknowledge": "on",
            "assign_to": colleague.pk,
            "note": "provider says it is on their side",
            "activities-TOTAL_FORMS": "0",
            "activities-INITIAL_FORMS": "0",
        },
        follow=True,
    )

    assert response.status_code == 200
    kinds = list(case.activities.values_list("kind", "actor", "assignee"))
    assert kinds == [
        ("acknowledged", operator.pk, None),
        ("assigned", operator.pk, colleague.pk),
        ("note", operator.pk, None),
    ]
    row = client.get(CHANGELIST).context["cl"].result_list[0]
    assert (row.assignee_username, row.acknowledged_at is not None) == (
        colleague.username,
        True,
    )


def test_a_viewer_cannot_work_a_case(client, cases):
    case, _ = cases
    log_in_verified(client, _operator("view_stuckcase"))

    response = client.post(
        reverse("admin:stuck_stuckcase_change", args=[case.pk]),
        {"acknowledge": "on"},
    )

    assert response.status_code == 403
    assert not StuckCaseActivity.objects.exists()


def test_the_acknowledge_action_reports_what_it_skipped(client, cases):
    open_case, closed_case = cases
    log_in_verified(client, _operator("work_stuckcase"))

    response = client.post(
        CHANGELIST + "?status=all",
        {
            "action": "acknowledge_selected",
            "_selected_action": [open_case.pk, closed_case.pk],
        },
        follow=True,
    )

    message = str(next(iter(response.context["messages"])))
    assert message == (
        "Acknowledged 1 case(s); skipped 0 already acknowledged and 1 closed."
    )
    assert list(StuckCaseActivity.objects.values_list("case", flat=True)) == [
        open_case.pk
    ]


def test_a_reopened_case_needs_a_new_acknowledgement(client, cases):
    case, _ = cases
    operator = _operator("work_stuckcase")
    log_in_verified(client, operator)
    with time_machine.travel(T0 + timedelta(hours=2, minutes=30), tick=False):
        client.post(
            CHANGELIST,
            {"action": "acknowledge_selected", "_selected_action": [case.pk]},
        )
    unseen = client.get(CHANGELIST, {"acknowledged": "no"}).context["cl"]
    assert unseen.result_count == 0
    rule = StuckRule.objects.get(name="deposit pending")
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        rule.after = 1000
        rule.save()
        stuck_detect()
        rule.after = 30
        rule.save()
    with time_machine.travel(T0 + timedelta(hours=4), tick=False):
        stuck_detect()

    row = client.get(CHANGELIST, {"acknowledged": "no"}).context["cl"].result_list
    assert [c.pk for c in row] == [case.pk]


def test_a_rule_change_in_the_admin_keeps_who_and_why(client):
    admin_user = make_user(is_staff=True, is_superuser=True)
    log_in_verified(client, admin_user)
    rule = StuckRule.objects.get(name="payout processing")

    client.post(
        reverse("admin:stuck_stuckrule_change", args=[rule.pk]),
        {
            "name": rule.name,
            "item_kind": "payout",
            "state": "processing",
            "provider": "",
            "after": "8",
            "unit": "hours",
            "is_active": "on",
            "description": rule.description,
            "change_reason": "provider SLA moved to 8 h",
        },
    )

    latest = rule.history.latest()
    assert (latest.after, latest.history_user, latest.history_change_reason) == (
        8,
        admin_user,
        "provider SLA moved to 8 h",
    )


def test_a_rule_for_a_state_that_never_waits_is_refused(client):
    log_in_verified(client, make_user(is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:stuck_stuckrule_add"),
        {
            "name": "paid payouts",
            "item_kind": "payout",
            "state": "paid",
            "after": "1",
            "unit": "hours",
            "change_reason": "trying",
        },
    )

    assert "a payout can wait in: created, processing" in response.content.decode()
    assert not StuckRule.objects.filter(name="paid payouts").exists()


def test_the_case_page_shows_the_case_and_its_activity(client, cases):
    case, _ = cases
    operator = _operator("work_stuckcase")
    stuck_case_note(case=case, actor=operator, text="asked the provider")
    log_in_verified(client, operator)

    page = client.get(reverse("admin:stuck_stuckcase_change", args=[case.pk]))

    body = page.content.decode()
    assert page.status_code == 200
    assert f"deposit {case.item_id}" in body
    assert "asked the provider" in body
    assert 'name="acknowledge"' in body


def test_searching_by_item_id_finds_the_case(client, cases):
    case, _ = cases
    log_in_verified(client, _operator("view_stuckcase"))

    found = client.get(CHANGELIST, {"q": str(case.item_id)}).context["cl"]
    nonsense = client.get(CHANGELIST, {"q": "abc"})

    assert list(found.queryset) == [case]
    assert nonsense.status_code == 200
