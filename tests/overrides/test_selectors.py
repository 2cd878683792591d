import pytest
import time_machine
from django.test import Client

from overrides.selectors import new_override_url, overrides_per_week
from overrides.services import (
    override_request_approve,
    override_request_execute,
    override_request_withdraw,
)
from tests.conftest import log_in_verified as log_in
from tests.factories import make_override, make_stuck_payout
from tests.overrides.conftest import approve_data, request_of

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SUNDAY_NIGHT = "2026-11-29 23:59:59"
MONDAY_MORNING = "2026-11-30 00:00:00"
NOW = "2026-12-02 12:00:00"


def _executed_at(moment, doer, approver):
    with time_machine.travel(moment, tick=False):
        override = make_override(target=make_stuck_payout(), doer=doer)
        request = request_of(log_in(Client(), approver), approver)
        override_request_approve(
            override_id=override.pk,
            approver=approver,
            request=request,
            **approve_data(override),
        )
        override_request_execute(
            override_id=override.pk, actor=approver, request=request
        )


def test_executed_overrides_are_counted_in_the_week_they_ran(doer, approver):
    _executed_at(SUNDAY_NIGHT, doer, approver)
    _executed_at(MONDAY_MORNING, doer, approver)
    with time_machine.travel(MONDAY_MORNING, tick=False):
        withdrawn = make_override(target=make_stuck_payout(), doer=doer)
        override_request_withdraw(override_id=withdrawn.pk, doer=doer, reason="x")

    with time_machine.travel(NOW, tick=False):
        this_week, last_week, older = overrides_per_week(weeks=3)

    assert (str(this_week.week), this_week.executed) == ("2026-11-30", 1)
    assert this_week.closed_unexecuted == 1
    assert (str(last_week.week), last_week.executed) == ("2026-11-23", 1)
    assert (older.executed, older.manual_interventions) == (0, 0)


def test_a_target_page_links_a_new_request_for_it(doer):
    payout = make_stuck_payout()

    url = new_override_url(payout)

    assert url.endswith(f"?target_kind=payout&target_id={payout.pk}")
