from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from finance.services.deposits import deposit_succeed
from finance.services.payouts import payout_accept
from stuck.models import StuckCase, StuckRule
from stuck.services import stuck_detect
from tests.factories import (
    make_deposit,
    make_payout,
    make_webhook_delivery,
    make_withdrawal,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _at(moment):
    return time_machine.travel(moment, tick=False)


def _detect(moment):
    with _at(moment):
        return stuck_detect()


def test_it_opens_a_case_for_a_deposit_pending_past_its_rule():
    with _at(T0):
        deposit = make_deposit(amount=4_200)

    assert _detect(T0 + timedelta(minutes=29)).opened == 0
    result = _detect(T0 + timedelta(minutes=31))

    case = StuckCase.objects.get()
    assert result.opened == 1
    assert (case.item_kind, case.item_id, case.state) == (
        "deposit",
        deposit.pk,
        "pending",
    )
    assert (case.amount, case.currency, case.provider) == (4_200, "EUR", "sandbox")
    assert case.rule.name == "deposit pending"
    assert case.age == timedelta(minutes=31)
    assert case.closed_at is None


def test_it_updates_the_case_on_the_next_run_instead_of_adding_one():
    with _at(T0):
        make_deposit()
    _detect(T0 + timedelta(hours=1))

    result = _detect(T0 + timedelta(hours=3))

    case = StuckCase.objects.get()
    assert (result.opened, result.open_cases) == (0, 1)
    assert case.first_seen_at == T0 + timedelta(hours=1)
    assert case.last_seen_at == T0 + timedelta(hours=3)
    assert case.age == timedelta(hours=3)


def test_running_twice_at_the_same_moment_changes_nothing():
    with _at(T0):
        make_deposit()
        make_withdrawal()
    first = _detect(T0 + timedelta(hours=1))
    second = _detect(T0 + timedelta(hours=1))

    assert (first.opened, second.opened, second.closed) == (2, 0, 0)
    assert StuckCase.objects.count() == 2


def test_it_closes_the_case_when_the_item_moves_on():
    with _at(T0):
        deposit = make_deposit()
    _detect(T0 + timedelta(hours=1))
    with _at(T0 + timedelta(hours=2)):
        deposit_succeed(deposit_id=deposit.pk, via="test", reason="late webhook")

    result = _detect(T0 + timedelta(hours=2, minutes=5))

    case = StuckCase.objects.get()
    assert result.closed == 1
    assert case.closed_at == T0 + timedelta(hours=2, minutes=5)
    assert case.current_state == "succeeded"
    assert case.close_reason == "moved to succeeded"


def test_a_payout_stuck_in_a_new_state_is_a_new_case():
    with _at(T0):
        payout = make_payout()
    _detect(T0 + timedelta(minutes=20))
    with _at(T0 + timedelta(minutes=30)):
        payout_accept(payout_id=payout.pk, provider_reference="p-1", via="test")

    _detect(T0 + timedelta(hours=7))

    created, processing = StuckCase.objects.order_by("pk")
    assert (created.state, created.close_reason) == ("created", "moved to processing")
    assert (processing.state, processing.closed_at) == ("processing", None)
    assert processing.rule.name == "payout processing"


def test_a_withdrawal_without_a_payout_is_stuck_and_closes_once_it_has_one():
    with _at(T0):
        withdrawal = make_withdrawal()
    _detect(T0 + timedelta(minutes=16))
    with _at(T0 + timedelta(minutes=17)):
        make_payout(withdrawal=withdrawal)

    _detect(T0 + timedelta(minutes=18))

    case = StuckCase.objects.get(item_kind="withdrawal")
    assert case.close_reason == "moved to processing"


def test_a_provider_rule_overrides_the_general_rule_for_that_provider():
    StuckRule.objects.create(
        name="slowbank processing",
        item_kind="payout",
        state="processing",
        provider="slowbank",
        after=3,
        unit="days",
    )
    with _at(T0):
        sandbox = make_payout(accept=True)
        slow = make_payout(accept=True, provider="slowbank")

    _detect(T0 + timedelta(hours=7))
    assert list(StuckCase.objects.values_list("item_id", flat=True)) == [sandbox.pk]

    _detect(T0 + timedelta(days=3, minutes=1))
    case = StuckCase.objects.get(item_id=slow.pk)
    assert case.rule.name == "slowbank processing"


def test_an_inactive_override_leaves_the_provider_to_the_general_rule():
    StuckRule.objects.create(
        name="slowbank processing",
        item_kind="payout",
        state="processing",
        provider="slowbank",
        after=3,
        unit="days",
        is_active=False,
    )
    with _at(T0):
        make_payout(accept=True, provider="slowbank")

    _detect(T0 + timedelta(hours=7))

    assert StuckCase.objects.get().rule.name == "payout processing"


def test_a_payout_past_the_payout_sla_is_flagged_as_a_breach(settings):
    settings.PAYOUT_SLA_HOURS = 24
    with _at(T0):
        payout = make_payout(accept=True)
    _detect(T0 + timedelta(hours=23, minutes=59))
    assert StuckCase.objects.get(item_id=payout.pk).sla_breached is False

    result = _detect(T0 + timedelta(hours=24, minutes=1))

    assert StuckCase.objects.get(item_id=payout.pk).sla_breached is True
    assert (result.sla_breaches, result.new_sla_breaches) == (1, 1)
    assert _detect(T0 + timedelta(hours=25)).new_sla_breaches == 0


def test_a_stuck_deposit_is_never_an_sla_breach():
    with _at(T0):
        make_deposit()

    _detect(T0 + timedelta(days=3))

    assert StuckCase.objects.get().sla_breached is False


def test_a_webhook_event_that_failed_twice_is_one_case_until_applied():
    with _at(T0):
        first = make_webhook_delivery(event_id="evt_1")
    with _at(T0 + timedelta(minutes=5)):
        make_webhook_delivery(event_id="evt_1")
        make_webhook_delivery(event_id="evt_2", outcome="applied", applied=True)

    _detect(T0 + timedelta(hours=1))
    case = StuckCase.objects.get()
    assert (case.item_kind, case.item_id, case.stuck_since) == (
        "webhook_delivery",
        first.pk,
        T0,
    )

    with _at(T0 + timedelta(hours=2)):
        make_webhook_delivery(event_id="evt_1", outcome="applied", applied=True)
    _detect(T0 + timedelta(hours=2))
    case.refresh_from_db()
    assert case.close_reason == "moved to applied"


def test_a_case_that_matches_again_after_a_rule_change_reopens():
    with _at(T0):
        make_deposit()
    _detect(T0 + timedelta(hours=1))
    rule = StuckRule.objects.get(name="deposit pending")
    rule.after, rule.unit = 2, "days"
    rule.save()
    closed = _detect(T0 + timedelta(hours=2))
    rule.after, rule.unit = 30, "minutes"
    rule.save()

    reopened = _detect(T0 + timedelta(hours=3))

    case = StuckCase.objects.get()
    assert closed.closed == 1
    assert (reopened.reopened, reopened.new_cases) == (1, 1)
    assert (case.closed_at, case.reopen_count) == (None, 1)
    assert case.opened_at == T0 + timedelta(hours=3)
    assert case.first_seen_at == T0 + timedelta(hours=1)


def test_new_cases_above_the_threshold_are_reported_for_alerting(settings):
    settings.STUCK_ALERT_NEW_CASES_THRESHOLD = 2
    with _at(T0):
        make_deposit()
        make_deposit()
    assert _detect(T0 + timedelta(hours=1)).threshold_exceeded is False

    with _at(T0 + timedelta(hours=1)):
        for _ in range(3):
            make_deposit()
    result = _detect(T0 + timedelta(hours=2))

    assert (result.new_cases, result.threshold_exceeded) == (3, True)


def test_a_dry_run_counts_but_writes_nothing():
    with _at(T0):
        make_deposit()

    result = _detect_dry(T0 + timedelta(hours=1))

    assert (result.opened, result.open_cases, result.dry_run) == (1, 1, True)
    assert not StuckCase.objects.exists()


def _detect_dry(moment):
    with _at(moment):
        return stuck_detect(dry_run=True)
