"""The catalogue: each action does exactly what its preview said, or nothing."""

from dataclasses import replace

import pytest
from django.test import Client
from django.urls import reverse

from finance.models import Account, LedgerTransaction, Payout, Wallet, Withdrawal
from finance.services.payouts import payout_accept
from overrides import actions
from overrides.actions import ACTIONS, target_get
from overrides.errors import ActionNotApplicable, InvalidParams, UnknownAction
from overrides.models import OverrideRequest
from overrides.services import override_request_approve, override_request_execute
from tests.conftest import log_in_verified as log_in
from tests.factories import (
    make_deposit,
    make_override,
    make_stuck_payout,
    make_wallet,
)
from tests.overrides.conftest import approve_data, request_of

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def run(approver):
    """Approve and execute a request as ``approver``; return it settled."""
    client = log_in(Client(), approver)

    def approve_and_execute(override):
        request = request_of(client, approver)
        override_request_approve(
            override_id=override.pk,
            approver=approver,
            request=request,
            **approve_data(override),
        )
        return override_request_execute(
            override_id=override.pk, actor=approver, request=request
        )

    return approve_and_execute


def _previewed(override):
    """The (account, amount) lines the approver was shown."""
    return sorted(
        (p["account"], p["amount"]) for p in override.submitted_preview["postings"]
    )


def _written(override):
    return sorted(
        (line["account"], line["amount"])
        for line in override.execution_result["postings"]
    )


def test_payout_fail_writes_the_release_it_previewed(doer, run):
    payout = make_stuck_payout(amount=5_000, fee=150)
    override = make_override(target=payout, doer=doer)

    done = run(override)

    assert done.status == "executed"
    assert _written(done) == _previewed(override)
    assert Wallet.objects.get(pk=payout.wallet_id).balance == 5_150


def test_payout_pay_writes_what_it_previewed_and_keeps_the_reference(doer, run):
    payout = make_stuck_payout(provider_reference=None)  # never answered: created
    override = make_override(
        target=payout,
        doer=doer,
        action="payout_pay",
        params={"provider_reference": "prv_999"},
    )

    done = run(override)

    payout.refresh_from_db()
    assert done.status == "executed"
    assert _written(done) == _previewed(override)
    assert (payout.state, payout.provider_reference) == ("paid", "prv_999")
    assert Withdrawal.objects.get(pk=payout.withdrawal_id).state == "completed"


def test_payout_pay_refuses_a_reference_that_belongs_to_another_payout(doer):
    taken = make_stuck_payout(provider_reference=None)
    payout_accept(payout_id=taken.pk, provider_reference="prv_1", via="test")
    payout = make_stuck_payout(provider_reference=None)

    with pytest.raises(ActionNotApplicable, match=f"belongs to payout {taken.pk}"):
        make_override(
            target=payout,
            doer=doer,
            action="payout_pay",
            params={"provider_reference": "prv_1"},
        )


def test_a_chargeback_may_leave_the_wallet_negative_and_says_so(doer, run):
    wallet = make_wallet()
    deposit = make_deposit(wallet=wallet, amount=3_000, succeed=True)
    make_stuck_payout(wallet=Wallet.objects.get(pk=wallet.pk), amount=2_000)
    override = make_override(
        target=deposit,
        doer=doer,
        action="deposit_charge_back",
        params={"chargeback_reference": "dp_1"},
    )

    done = run(override)

    assert (
        "The wallet will be negative: -20.00 EUR."
        in override.submitted_preview["notes"]
    )
    assert _written(done) == _previewed(override)
    assert Wallet.objects.get(pk=wallet.pk).balance == -2_000


@pytest.mark.parametrize(
    ("direction", "balance"), [("credit_wallet", 1_250), ("debit_wallet", 750)]
)
def test_a_suspense_adjustment_moves_money_without_touching_the_state(
    doer, run, direction, balance
):
    deposit = make_deposit(amount=1_000, succeed=True)
    override = make_override(
        target=deposit,
        doer=doer,
        action="suspense_adjustment",
        params={"direction": direction, "amount": 250, "currency": "EUR"},
    )

    done = run(override)

    deposit.refresh_from_db()
    assert done.status == "executed"
    assert _written(done) == _previewed(override)
    assert deposit.version == override.target_version
    assert Wallet.objects.get(pk=deposit.wallet_id).balance == balance
    ledger_tx = LedgerTransaction.objects.get(
        idempotency_key=f"override:{done.pk}:adjustment"
    )
    assert (ledger_tx.kind, ledger_tx.operation_kind) == ("adjustment", "deposit")
    assert ledger_tx.created_by == done.approver


def test_a_debit_the_wallet_cannot_cover_fails_and_writes_nothing(doer, run):
    deposit = make_deposit(amount=1_000, succeed=True)
    override = make_override(
        target=deposit,
        doer=doer,
        action="suspense_adjustment",
        params={"direction": "debit_wallet", "amount": 1_001, "currency": "EUR"},
    )

    done = run(override)

    assert done.status == "failed"
    assert "InsufficientFunds" in done.execution_error
    assert not LedgerTransaction.objects.filter(kind="adjustment").exists()
    assert Wallet.objects.get(pk=deposit.wallet_id).balance == 1_000


def test_a_preview_writes_nothing(doer):
    deposit = make_deposit(amount=1_000, succeed=True)
    accounts, journal = Account.objects.count(), LedgerTransaction.objects.count()

    preview = ACTIONS["suspense_adjustment"].preview(
        deposit, {"direction": "credit_wallet", "amount": 5, "currency": "EUR"}
    )

    assert [p.account_id for p in preview.postings][1] is None  # suspense is new
    assert (Account.objects.count(), LedgerTransaction.objects.count()) == (
        accounts,
        journal,
    )


def test_execution_refuses_postings_other_than_the_preview(doer, run, monkeypatch):
    payout = make_stuck_payout(amount=5_000)
    override = make_override(target=payout, doer=doer)
    real = actions.PayoutFailAction.preview

    def shown_less(self, target, params, *, override_id=None):
        preview = real(self, target, params, override_id=override_id)
        return actions.Preview(
            summary=preview.summary,
            state_changes=preview.state_changes,
            postings=[replace(p, amount=p.amount // 2) for p in preview.postings],
        )

    monkeypatch.setattr(actions.PayoutFailAction, "preview", shown_less)
    done = run(override)

    assert done.status == "failed"
    assert "PreviewMismatch" in done.execution_error
    assert Payout.objects.get(pk=payout.pk).state == "processing"
    assert not LedgerTransaction.objects.filter(kind="withdrawal_release").exists()


@pytest.mark.parametrize("name", ["sql", "DROP TABLE finance_payout", "", None, 7])
def test_an_unknown_action_is_refused(doer, name):
    with pytest.raises(UnknownAction):
        make_override(target=make_stuck_payout(), doer=doer, action=name)

    assert not OverrideRequest.objects.exists()


def test_the_admin_refuses_an_unknown_action(doer):
    payout = make_stuck_payout()
    client = log_in(Client(), doer)
    url = reverse("admin:overrides_overriderequest_add")

    page = client.post(
        f"{url}?target_kind=payout&target_id={payout.pk}&action=run_sql",
        {"reason": "r", "ticket_reference": "T-1", "_submit": "1"},
    )

    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    assert not OverrideRequest.objects.exists()


def test_an_action_for_another_kind_of_target_is_refused(doer):
    with pytest.raises(ActionNotApplicable, match="does not apply to a deposit"):
        make_override(target=make_deposit(succeed=True), doer=doer)


ADJUST = {"direction": "credit_wallet", "amount": 100, "currency": "EUR"}


@pytest.mark.parametrize(
    ("action", "params", "field"),
    [
        ("payout_pay", {}, "provider_reference"),
        ("payout_pay", {"provider_reference": "x" * 101}, "provider_reference"),
        ("payout_fail", {"sql": "UPDATE finance_payout SET state='paid'"}, "sql"),
        ("suspense_adjustment", {**ADJUST, "amount": "12.50"}, "amount"),
        ("suspense_adjustment", {**ADJUST, "amount": 12.5}, "amount"),
        ("suspense_adjustment", {**ADJUST, "amount": 0}, "amount"),
        ("suspense_adjustment", {**ADJUST, "amount": -100}, "amount"),
        ("suspense_adjustment", {**ADJUST, "amount": 10**14}, "amount"),
        ("suspense_adjustment", {**ADJUST, "amount": True}, "amount"),
        ("suspense_adjustment", {**ADJUST, "currency": "XXX"}, "currency"),
        ("suspense_adjustment", {**ADJUST, "currency": "JPY"}, "currency"),
        ("suspense_adjustment", {**ADJUST, "direction": "both"}, "direction"),
        ("suspense_adjustment", {**ADJUST, "wallet_id": 1}, "wallet_id"),
    ],
)
def test_invalid_parameters_are_refused(doer, action, params, field):
    target = make_deposit(succeed=True) if action == "suspense_adjustment" else None

    with pytest.raises(InvalidParams) as refused:
        make_override(
            target=target or make_stuck_payout(),
            doer=doer,
            action=action,
            params=params,
        )

    assert field in refused.value.errors
    assert not OverrideRequest.objects.exists()


def test_parameters_must_be_an_object(doer):
    with pytest.raises(InvalidParams):
        ACTIONS["payout_fail"].clean_params(["payout_fail"])


def test_an_adjustment_in_another_currency_than_the_wallet_is_refused(doer):
    deposit = make_deposit(succeed=True)

    with pytest.raises(ActionNotApplicable, match="holds EUR, not USD"):
        make_override(
            target=deposit,
            doer=doer,
            action="suspense_adjustment",
            params={**ADJUST, "currency": "USD"},
        )


def test_a_missing_target_is_refused():
    with pytest.raises(ActionNotApplicable, match="there is no payout 999999"):
        target_get("payout", 999_999)
