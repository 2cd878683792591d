"""Money from request to bank and back, through the sandbox over real HTTP:
our client calls the sandbox, the sandbox settles and calls our webhook."""

from collections import defaultdict

import pytest

from finance.models import Account, Payout, Posting, Wallet
from finance.provider import provider_client
from finance.services.payouts import payout_submit
from finance.states import DepositState, PayoutState, WithdrawalState
from sandbox.models import SandboxWebhook
from tests.factories import make_deposit, make_payout, make_wallet, make_withdrawal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def settling(sandbox, settings):
    """The sandbox settles what it accepts at once, as Celery runs eagerly."""
    settings.SANDBOX_AUTO_SETTLE = True
    return sandbox


def _sums_by_currency():
    totals = defaultdict(int)
    for currency, amount in Posting.objects.values_list("currency", "amount"):
        totals[currency] += amount
    return dict(totals)


def _balance(kind, provider=""):
    account = Account.objects.get(kind=kind, currency="EUR", provider=provider)
    return sum(account.postings.values_list("amount", flat=True))


def test_a_committed_withdrawal_is_paid_out_through_the_provider(settling, settings):
    settings.PAYOUT_AUTO_START = True
    wallet = make_wallet(balance=10_000)

    withdrawal = make_withdrawal(wallet=wallet, amount=4_000, fee=100)

    payout = Payout.objects.get(withdrawal=withdrawal)
    withdrawal.refresh_from_db()
    wallet.refresh_from_db()
    assert payout.state == PayoutState.PAID
    assert withdrawal.state == WithdrawalState.COMPLETED
    assert SandboxWebhook.objects.get().status == "delivered"
    assert wallet.balance == 5_900
    assert wallet.balance == sum(
        wallet.account.postings.values_list("amount", flat=True)
    )
    assert _sums_by_currency() == {"EUR": 0}
    assert _balance(Account.Kind.PAYOUTS_IN_TRANSIT) == 0
    assert _balance(Account.Kind.FEES) == 100
    assert _balance(Account.Kind.PROVIDER_CLEARING, "sandbox") == -6_000


def test_a_payout_accepted_first_and_settled_later_passes_processing(sandbox):
    payout = make_payout()
    payout_submit(payout_id=payout.pk, via="system")
    payout.refresh_from_db()

    sandbox.control(f"payouts/{payout.provider_reference}/settle")

    payout.refresh_from_db()
    assert list(payout.transitions.values_list("to_state", "via")) == [
        ("created", "test"),
        ("processing", "system"),
        ("paid", "webhook"),
    ]


def test_a_payout_the_bank_fails_gives_the_money_back(settling):
    wallet = make_wallet(balance=10_000)
    payout = make_payout(wallet=wallet, amount=4_000, fee=100)
    settling.control("plans", reference=str(payout.reference), behaviour="fail")

    payout_submit(payout_id=payout.pk, via="system")

    payout.refresh_from_db()
    wallet.refresh_from_db()
    assert payout.state == PayoutState.FAILED
    assert payout.withdrawal.state == WithdrawalState.FAILED
    assert wallet.balance == 10_000
    assert _sums_by_currency() == {"EUR": 0}


def test_a_returned_payout_credits_the_wallet_again(settling):
    wallet = make_wallet(balance=10_000)
    payout = make_payout(wallet=wallet, amount=4_000)
    payout_submit(payout_id=payout.pk, via="system")
    payout.refresh_from_db()

    settling.control(f"payouts/{payout.provider_reference}/return")

    payout.refresh_from_db()
    wallet.refresh_from_db()
    assert payout.state == PayoutState.RETURNED
    assert wallet.balance == 10_000
    assert _balance(Account.Kind.PROVIDER_CLEARING, "sandbox") == -10_000


def test_a_deposit_intent_paid_at_the_provider_credits_the_wallet(settling):
    deposit = make_deposit(amount=2_500)

    answer = provider_client("sandbox").create_deposit(
        idempotency_key=f"deposit-{deposit.reference}",
        reference=str(deposit.reference),
        amount=deposit.amount,
        currency=deposit.currency,
    )

    deposit.refresh_from_db()
    assert deposit.state == DepositState.SUCCEEDED
    assert deposit.provider_reference == answer.provider_reference
    assert Wallet.objects.get(pk=deposit.wallet_id).balance == 2_500
