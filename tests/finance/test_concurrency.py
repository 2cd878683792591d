"""Concurrent writers on PostgreSQL, each thread on its own connection."""

import threading

import pytest
from django.db import connection
from django.db.models import Sum

from finance.errors import InsufficientFunds
from finance.models import Posting, Wallet
from finance.services.deposits import deposit_create, deposit_succeed
from finance.services.withdrawals import withdrawal_request
from tests.factories import make_wallet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _run_in_threads(target, args_list):
    errors = []
    start = threading.Barrier(len(args_list))

    def run(*args):
        try:
            start.wait()
            target(*args)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


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

    errors = _run_in_threads(settle, [(d.pk,) for d in deposits])

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

    errors = _run_in_threads(withdraw, [(n,) for n in range(6)])

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

    errors = _run_in_threads(settle, [() for _ in range(4)])

    wallet.refresh_from_db()
    assert len(errors) == 3
    assert wallet.balance == 500
    assert wallet.balance == _posted_sum(wallet)
