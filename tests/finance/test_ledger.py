import pytest

from finance.errors import IdempotencyConflict, InsufficientFunds, UnbalancedTransaction
from finance.models import Account, LedgerTransaction, Posting
from finance.services.ledger import Line, ledger_post, ledger_reverse, platform_account
from tests.factories import make_wallet

pytestmark = pytest.mark.django_db


def _suspense(currency="EUR"):
    return platform_account(kind=Account.Kind.SUSPENSE, currency=currency)


def _post(key, lines, **kwargs):
    from django.db import transaction

    with transaction.atomic():
        return ledger_post(
            idempotency_key=key, kind="adjustment", lines=lines, **kwargs
        )


def test_it_posts_a_balanced_transaction_and_moves_the_wallet():
    wallet = make_wallet()

    ledger_tx, created = _post(
        "adj-1", [Line(wallet.account, 700), Line(_suspense(), -700)]
    )

    wallet.refresh_from_db()
    assert created
    assert wallet.balance == 700
    assert sorted(ledger_tx.postings.values_list("amount", flat=True)) == [-700, 700]


def test_it_refuses_lines_that_do_not_sum_to_zero():
    wallet = make_wallet()

    with pytest.raises(UnbalancedTransaction):
        _post("adj-1", [Line(wallet.account, 700), Line(_suspense(), -600)])

    assert not LedgerTransaction.objects.exists()


def test_it_refuses_a_single_line_and_zero_and_float_amounts():
    wallet = make_wallet()
    for lines in (
        [Line(wallet.account, 0), Line(_suspense(), 0)],
        [Line(wallet.account, 1.5), Line(_suspense(), -1.5)],
        [Line(wallet.account, 5)],
    ):
        with pytest.raises(UnbalancedTransaction):
            _post("adj-x", lines)
    assert not Posting.objects.exists()


def test_it_balances_per_currency_not_across_currencies():
    wallet = make_wallet(currency="EUR")

    with pytest.raises(UnbalancedTransaction):
        _post("fx", [Line(wallet.account, 100), Line(_suspense("USD"), -100)])


def test_same_key_twice_posts_once():
    wallet = make_wallet()
    lines = [Line(wallet.account, 250), Line(_suspense(), -250)]

    first, _ = _post("adj-1", lines)
    again, created = _post("adj-1", lines)

    wallet.refresh_from_db()
    assert again.pk == first.pk
    assert not created
    assert wallet.balance == 250
    assert Posting.objects.count() == 2


def test_same_key_with_other_lines_is_refused():
    wallet = make_wallet()
    _post("adj-1", [Line(wallet.account, 250), Line(_suspense(), -250)])

    with pytest.raises(IdempotencyConflict):
        _post("adj-1", [Line(wallet.account, 999), Line(_suspense(), -999)])


def test_a_debit_beyond_the_balance_is_refused_and_writes_nothing():
    wallet = make_wallet(balance=100)
    postings_before = Posting.objects.count()

    with pytest.raises(InsufficientFunds):
        _post("adj-1", [Line(wallet.account, -101), Line(_suspense(), 101)])

    wallet.refresh_from_db()
    assert wallet.balance == 100
    assert Posting.objects.count() == postings_before


def test_an_overdraft_passes_when_allowed():
    wallet = make_wallet(balance=100)

    _post(
        "adj-1",
        [Line(wallet.account, -150), Line(_suspense(), 150)],
        allow_overdraft=True,
    )

    wallet.refresh_from_db()
    assert wallet.balance == -50


def test_a_reversal_mirrors_the_original():
    wallet = make_wallet()
    original, _ = _post("adj-1", [Line(wallet.account, 400), Line(_suspense(), -400)])

    from django.db import transaction

    with transaction.atomic():
        reversal, _ = ledger_reverse(
            original=original, idempotency_key="adj-1:reversal", memo="typo"
        )

    wallet.refresh_from_db()
    assert wallet.balance == 0
    assert reversal.reverses_id == original.pk
    assert sorted(reversal.postings.values_list("amount", flat=True)) == [-400, 400]


@pytest.mark.django_db(transaction=True)
def test_posting_outside_a_transaction_is_a_programming_error():
    wallet = make_wallet()
    with pytest.raises(RuntimeError):
        ledger_post(
            idempotency_key="k",
            kind="adjustment",
            lines=[Line(wallet.account, 1), Line(_suspense(), -1)],
        )
