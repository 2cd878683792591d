from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from stuck.models import StuckCase, StuckRule
from stuck.services import stuck_detect
from tests.concurrency import run_concurrently
from tests.factories import make_deposit, make_payout

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_runs_leave_one_case_per_item():
    # An earlier transactional test's flush may have removed the seeded rules.
    for kind, state in [("deposit", "pending"), ("payout", "created")]:
        StuckRule.objects.get_or_create(
            item_kind=kind,
            state=state,
            provider="",
            defaults={"name": f"{kind} {state}", "after": 15, "unit": "minutes"},
        )
    with time_machine.travel(T0, tick=False):
        for _ in range(5):
            make_deposit()
            make_payout()
    results, errors = run_concurrently(
        lambda: stuck_detect(now=T0 + timedelta(hours=1)), [(), ()]
    )

    assert errors == []
    assert sorted(result.opened for result in results) == [0, 10]
    assert StuckCase.objects.count() == 10
    assert StuckCase.objects.filter(closed_at__isnull=False).count() == 0
