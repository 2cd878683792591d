import pytest

from finance.errors import IllegalTransition, InsufficientFunds, MoneyError
from finance.models import Account, LedgerTransaction, Posting, Withdrawal
from finance.services.deposits import (
    deposit_charge_back,
    deposit_create,
    deposit_fail,
    deposit_succeed,
)
from finance.services.ledger import platform_account
from finance.services.payouts import (
    payout_accept,
    payout_fail,
    payout_pay,
    payout_return,
)
from finance.services.withdrawals import withdrawal_cancel
from finance.states import DepositState, PayoutState, WithdrawalState
from tests.factories import (
    make_deposit,
    make_payout,
    make_user,
    make_wallet,
    make_withdrawal,
)

pytestmark = pytest.mark.django_db


def _balance(account):
    return sum(account.postings.values_list("amount", flat=True))


def _platform(kind, provider=""):
    return platform_account(kind=kind, currency="EUR", provider=provider)


def test_a_settled_deposit_credits_the_wallet_from_provider_clearing():
    wallet = make_wallet()
    deposit = make_deposit(wallet=wallet, amount=2_500)
    user = make_user()

    deposit_succeed(
        deposit_id=deposit.pk, via="admin", reason="seen at bank", actor=user
    )

    wallet.refresh_from_db()
    deposit.refresh_from_db()
    assert wallet.balance == 2_500
    assert _balance(_platform(Account.Kind.PROVIDER_CLEARING, "sandbox")) == -2_500
    assert deposit.state == DepositState.SUCCEEDED
    assert deposit.version == 2
    move = deposit.transitions.get()
    assert (move.from_state, move.to_state, move.actor, move.via) == (
        "pending",
        "succeeded",
        user,
        "admin",
    )
    assert move.ledger_transaction.operation_id == deposit.pk
    assert wallet.customer.__class__.objects.get().first_deposit_at is not None


def test_a_chargeback_takes_the_money_back_even_into_the_negative():
    wallet = make_wallet()
    deposit = make_deposit(wallet=wallet, amount=1_000, succeed=True)
    make_withdrawal(wallet=wallet, amount=800)

    deposit_charge_back(deposit_id=deposit.pk, via="webhook", reason="dispute lost")

    wallet.refresh_from_db()
    assert wallet.balance == -800
    assert wallet.balance == _balance(wallet.account)


def test_a_failed_deposit_moves_no_money():
    deposit = make_deposit()

    deposit_fail(deposit_id=deposit.pk, via="webhook", reason="card declined")

    assert not Posting.objects.exists()


@pytest.mark.parametrize(
    "move", [deposit_succeed, deposit_fail], ids=["succeed", "fail"]
)
def test_a_finished_deposit_cannot_move_again(move):
    deposit = make_deposit(succeed=True)

    with pytest.raises(IllegalTransition):
        move(deposit_id=deposit.pk, via="webhook", reason="replay")

    assert Posting.objects.count() == 2


def test_a_pending_deposit_cannot_be_charged_back():
    deposit = make_deposit()

    with pytest.raises(IllegalTransition):
        deposit_charge_back(deposit_id=deposit.pk, via="webhook", reason="dispute")

    assert not Posting.objects.exists()


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(0, "EUR"), (-5, "EUR"), (10.5, "EUR"), ("100", "EUR"), (True, "EUR"),
     (100, "XXX"), (100, "eur"), (100, "JPY"), (100, "USD")],
)  # fmt: skip
def test_bad_amounts_and_currencies_are_refused(amount, currency):
    wallet = make_wallet(currency="EUR")

    with pytest.raises(MoneyError):
        deposit_create(wallet=wallet, amount=amount, currency=currency, provider="x")


def test_a_withdrawal_holds_amount_and_fee():
    wallet = make_wallet(balance=10_000)

    make_withdrawal(wallet=wallet, amount=6_000, fee=150)

    wallet.refresh_from_db()
    assert wallet.balance == 3_850
    assert _balance(_platform(Account.Kind.PAYOUTS_IN_TRANSIT)) == 6_000
    assert _balance(_platform(Account.Kind.FEES)) == 150


def test_a_withdrawal_beyond_the_balance_writes_nothing():
    wallet = make_wallet(balance=1_000)

    with pytest.raises(InsufficientFunds):
        make_withdrawal(wallet=wallet, amount=1_000, fee=1)

    assert not Withdrawal.objects.exists()
    assert Posting.objects.count() == 2


def test_a_cancelled_withdrawal_gives_everything_back():
    wallet = make_wallet(balance=10_000)
    withdrawal = make_withdrawal(wallet=wallet, amount=6_000, fee=150)

    withdrawal_cancel(withdrawal_id=withdrawal.pk, via="admin", reason="customer asked")

    wallet.refresh_from_db()
    assert wallet.balance == 10_000
    assert _balance(_platform(Account.Kind.PAYOUTS_IN_TRANSIT)) == 0


def test_a_paid_payout_completes_the_withdrawal_and_moves_money_to_clearing():
    wallet = make_wallet(balance=10_000)
    payout = make_payout(wallet=wallet, amount=4_000)

    payout_accept(payout_id=payout.pk, provider_reference="po_1", via="provider")
    payout_pay(payout_id=payout.pk, via="webhook", reason="provider paid")

    payout.refresh_from_db()
    payout.withdrawal.refresh_from_db()
    assert payout.state == PayoutState.PAID
    assert payout.provider_reference == "po_1"
    assert payout.withdrawal.state == WithdrawalState.COMPLETED
    assert _balance(_platform(Account.Kind.PAYOUTS_IN_TRANSIT)) == 0
    assert _balance(_platform(Account.Kind.PROVIDER_CLEARING, "sandbox")) == -6_000


def test_a_failed_payout_returns_the_hold_to_the_wallet():
    wallet = make_wallet(balance=10_000)
    payout = make_payout(wallet=wallet, amount=4_000, fee=100)

    payout_fail(payout_id=payout.pk, via="webhook", reason="account closed")

    wallet.refresh_from_db()
    payout.refresh_from_db()
    assert wallet.balance == 10_000
    assert payout.withdrawal.state == WithdrawalState.FAILED
    assert payout.last_error == "account closed"


def test_a_returned_payout_credits_the_wallet_again():
    wallet = make_wallet(balance=10_000)
    payout = make_payout(wallet=wallet, amount=4_000)
    payout_pay(payout_id=payout.pk, via="webhook", reason="paid")

    payout_return(payout_id=payout.pk, via="webhook", reason="name mismatch")

    wallet.refresh_from_db()
    payout.refresh_from_db()
    assert wallet.balance == 10_000
    assert payout.state == PayoutState.RETURNED
    assert payout.withdrawal.state == WithdrawalState.RETURNED


def test_a_failed_payout_cannot_be_paid_later():
    payout = make_payout()
    payout_fail(payout_id=payout.pk, via="webhook", reason="rejected")
    postings = Posting.objects.count()

    with pytest.raises(IllegalTransition):
        payout_pay(payout_id=payout.pk, via="webhook", reason="late paid event")

    payout.refresh_from_db()
    assert payout.state == PayoutState.FAILED
    assert Posting.objects.count() == postings


def test_every_move_leaves_a_transition_with_its_postings():
    payout = make_payout()
    payout_pay(payout_id=payout.pk, via="webhook", reason="paid")

    moves = list(payout.transitions.values_list("from_state", "to_state"))
    assert moves == [("", "created"), ("created", "paid")]
    paid = payout.transitions.get(to_state="paid").ledger_transaction
    assert paid.kind == LedgerTransaction.Kind.PAYOUT_PAID


def test_a_long_reason_is_kept_whole_on_the_transition():
    deposit = make_deposit()
    reason = "provider support confirmed the transfer; " * 8

    deposit_fail(deposit_id=deposit.pk, via="admin", reason=reason)

    assert deposit.transitions.get().reason == reason[:500]
    assert deposit.history.latest().history_change_reason == reason[:100]
