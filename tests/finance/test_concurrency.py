"""Concurrent writers on PostgreSQL, each thread on its own connection."""

import pytest
from django.db.models import Sum

from finance.errors import InsufficientFunds
from finance.models import Posting, Wallet
from finance.services.deposits import deposit_create, deposit_succeed
from finance.services.withdrawals import withdrawal_request
from tests.concurrency import run_concurrently
from tests.factories import make_wallet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _posted_sum(wallet):
    total = Posting.objects.filter(account_id=wallet.account_id).aggregate(
        Sum("amount")
    )
    return total["amount__sum"] or 0


def test_concurrent_deposits_to_one_wallet_lose_no_update():
    wallet = make_wallet()
    deposits = [
        deposit_create(
            wallet=wallet, amount=100 + n, currency="EUR", provider="sandbox"
        )
        for n in range(8)
    ]

    def settle(deposit_id):
        deposit_succeed(deposit_id=deposit_id, via="test", reason="concurrent")

    _, errors = run_concurrently(settle, [(d.pk,) for d in deposits])

    wallet.refresh_from_db()
    assert errors == []
    assert wallet.balance == sum(d.amount for d in deposits)
    assert wallet.balance == _posted_sum(wallet)


def test_concurrent_withdrawals_never_overdraw_the_wallet():
    wallet = make_wallet(balance=1_000)

    def withdraw(n):
        withdrawal_request(
            wallet=Wallet.objects.get(pk=wallet.pk),
            amount=300,
            currency="EUR",
            provider="sandbox",
            destination_label="bank ****0001",
            via="test",
        )

    _, errors = run_concurrently(withdraw, [(n,) for n in range(6)])

    wallet.refresh_from_db()
    assert len(errors) == 3
    assert all(isinstance(error, InsufficientFunds) for error in errors)
    assert wallet.balance == 100
    assert wallet.balance == _posted_sum(wallet)


def test_the_same_deposit_settled_concurrently_posts_once():
    wallet = make_wallet()
    deposit = deposit_create(
        wallet=wallet, amount=500, currency="EUR", provider="sandbox"
    )

    def settle():
        deposit_succeed(deposit_id=deposit.pk, via="test", reason="race")

    _, errors = run_concurrently(settle, [() for _ in range(4)])

    wallet.refresh_from_db()
    assert len(errors) == 3
    assert wallet.balance == 500
    assert wallet.balance == _posted_sum(wallet)
