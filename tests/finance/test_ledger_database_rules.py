"""The ledger's rules hold even against hand-written SQL (PostgreSQL only)."""

import pytest
from django.db import DatabaseError, connection, transaction

from finance.models import Account, LedgerTransaction, Posting
from finance.services.ledger import platform_account
from tests.factories import make_wallet

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def _new_transaction(key):
    return LedgerTransaction.objects.create(idempotency_key=key, kind="adjustment")


def _insert_postings(tx_id, *legs):
    values = ", ".join(["(%s, %s, %s, %s, now())"] * len(legs))
    params = [v for account, amount in legs for v in (tx_id, account.pk, amount, "EUR")]
    _raw(
        "INSERT INTO finance_posting (transaction_id, account_id, amount, currency,"
        f" created_at) VALUES {values}",
        params,
    )


def test_raw_insert_of_an_unbalanced_transaction_is_rejected():
    wallet = make_wallet()
    suspense = platform_account(kind=Account.Kind.SUSPENSE, currency="EUR")
    tx = _new_transaction("raw-1")

    with pytest.raises(DatabaseError, match="unbalanced"):
        _insert_postings(tx.pk, (wallet.account, 500), (suspense, -499))

    assert not Posting.objects.filter(transaction=tx).exists()


def test_raw_insert_of_a_balanced_transaction_is_accepted():
    wallet = make_wallet()
    suspense = platform_account(kind=Account.Kind.SUSPENSE, currency="EUR")
    tx = _new_transaction("raw-1")

    _insert_postings(tx.pk, (wallet.account, 500), (suspense, -500))

    assert Posting.objects.filter(transaction=tx).count() == 2


def test_a_third_leg_cannot_unbalance_a_committed_transaction():
    wallet = make_wallet(balance=1_000)
    tx = LedgerTransaction.objects.get()

    with pytest.raises(DatabaseError, match="unbalanced"):
        _insert_postings(tx.pk, (wallet.account, 1))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE finance_posting SET amount = amount * 2",
        "DELETE FROM finance_posting",
        "UPDATE finance_ledgertransaction SET memo = 'edited'",
        "DELETE FROM finance_ledgertransaction",
    ],
)
def test_raw_update_or_delete_of_the_ledger_is_rejected(statement):
    make_wallet(balance=1_000)

    with pytest.raises(DatabaseError, match="append-only"):
        _raw(statement)

    assert sorted(Posting.objects.values_list("amount", flat=True)) == [-1_000, 1_000]


def test_orm_delete_of_a_posting_is_rejected():
    make_wallet(balance=1_000)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Posting.objects.first().delete()
