"""Every invariant of the deep scan, broken on purpose and found exactly.

Each test breaks the books from the ``books`` fixture in one way and expects
the scan to report exactly the mismatches that break implies (an invariant
rarely fails alone: money moved in one place is missing in another), each
with its expected and actual amounts.
"""

import pytest
from django.db import transaction
from django.db.models import Sum

from finance.models import Account, LedgerTransaction, Posting
from finance.services.ledger import (
    Line,
    ledger_post,
    ledger_reverse,
    platform_account,
)
from reconciliation.checks import split, wallet_check_plan
from reconciliation.snapshots import SnapshotReader
from tests.reconciliation.scanning import (
    break_wallet,
    found,
    plant,
    scan,
    wallet_leg,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

CLEARING_EUR = "platform:provider_clearing:sandbox:EUR"


@pytest.mark.django_db(transaction=False)
def test_ranges_cover_every_id_once_around_the_platform_accounts():
    assert split(1, 10, size=4, holes=[2, 9]) == [(1, 1), (3, 4), (5, 8), (10, 10)]


def _posted(kind: str, currency: str = "EUR", provider: str = "") -> int:
    total = Posting.objects.filter(
        account__kind=kind, account__currency=currency, account__provider=provider
    ).aggregate(total=Sum("amount"))["total"]
    return total or 0


def _clearing() -> int:
    return _posted(Account.Kind.PROVIDER_CLEARING, provider="sandbox")


def test_the_wallet_check_merges_a_sorted_aggregate_of_the_covering_index(books):
    with SnapshotReader("default") as reader:
        reader.begin()
        plan = wallet_check_plan(reader.cursor(), lo=1, hi=10**9)

    assert "Merge Join" in plan
    assert "GroupAggregate" in plan
    assert "Index Only Scan using posting_account_amount" in plan
    assert "HashAggregate" not in plan


def test_it_finds_nothing_in_consistent_books(books):
    result = scan()

    assert result.complete
    assert result.ranges_done == result.ranges_total > 6
    assert result.rows_scanned > 0
    assert found(result) == set()


def test_it_finds_a_wallet_balance_that_differs_from_its_postings(books):
    alice = books["alice"]
    break_wallet(alice, by=123)

    assert found(scan()) == {
        (
            "wallet_balance",
            f"wallet:{alice.pk}",
            "EUR",
            alice.balance,
            alice.balance + 123,
        )
    }


def test_it_finds_a_posting_in_another_currency_than_its_account(books):
    leg = wallet_leg(books["bob"])
    plant("UPDATE finance_posting SET currency = 'USD' WHERE id = %s", [leg.pk])

    tx = f"transaction:{leg.transaction_id}"
    assert found(scan()) == {
        ("posting_currency", f"{tx}/account:{leg.account_id}", "USD", 0, leg.amount),
        ("transaction_balanced", tx, "EUR", 0, -leg.amount),
        ("transaction_balanced", tx, "USD", 0, leg.amount),
    }


def test_it_finds_a_posting_on_a_missing_account(books):
    alice = books["alice"]
    leg = wallet_leg(alice)
    plant("UPDATE finance_posting SET account_id = 999999 WHERE id = %s", [leg.pk])

    tx = f"transaction:{leg.transaction_id}"
    assert found(scan()) == {
        ("posting_account", f"{tx}/account:999999", "EUR", 0, leg.amount),
        (
            "wallet_balance",
            f"wallet:{alice.pk}",
            "EUR",
            alice.balance - leg.amount,
            alice.balance,
        ),
    }


def test_it_finds_postings_of_a_missing_transaction(books):
    leg = wallet_leg(books["alice"])
    deposit_id = leg.transaction.operation_id
    plant(
        "UPDATE finance_posting SET transaction_id = 999999 WHERE transaction_id = %s",
        [leg.transaction_id],
    )

    assert found(scan()) == {
        # Both legs are adrift: their gross is twice the deposit.
        ("posting_transaction", "transaction:999999", "EUR", 0, 2 * leg.amount),
        (
            "operation_transaction",
            f"deposit:{deposit_id}/deposit_credit",
            "EUR",
            leg.amount,
            0,
        ),
    }


def test_it_finds_an_unbalanced_transaction(books):
    leg = wallet_leg(books["bob"])
    suspense = platform_account(kind=Account.Kind.SUSPENSE, currency="EUR")
    plant(
        "INSERT INTO finance_posting (transaction_id, account_id, amount, currency, "
        "created_at) VALUES (%s, %s, 55, 'EUR', now())",
        [leg.transaction_id, suspense.pk],
    )

    assert found(scan()) == {
        ("transaction_balanced", f"transaction:{leg.transaction_id}", "EUR", 0, 55),
        ("platform_balance", "platform:suspense::EUR", "EUR", 0, 55),
        # The credit now moves 55 more than its deposit.
        (
            "operation_transaction",
            f"deposit:{leg.transaction.operation_id}/deposit_credit",
            "EUR",
            leg.amount,
            leg.amount + 55,
        ),
    }


def test_it_finds_a_succeeded_deposit_without_its_credit(books):
    pending = books["pending"]
    credit = f"deposit:{pending.pk}/deposit_credit"
    clearing = _clearing()
    plant("UPDATE finance_deposit SET state = 'succeeded' WHERE id = %s", [pending.pk])

    assert found(scan()) == {
        ("operation_transaction", credit, "EUR", 700, 0),
        ("platform_balance", CLEARING_EUR, "EUR", clearing - 700, clearing),
    }


def test_it_finds_a_cancelled_withdrawal_whose_hold_was_never_released(books):
    requested = books["requested"]
    in_transit = _posted(Account.Kind.PAYOUTS_IN_TRANSIT)
    fees = _posted(Account.Kind.FEES)
    plant(
        "UPDATE finance_withdrawal SET state = 'cancelled' WHERE id = %s",
        [requested.pk],
    )

    assert found(scan()) == {
        (
            "operation_transaction",
            f"withdrawal:{requested.pk}/withdrawal_release",
            "EUR",
            4_100,
            0,
        ),
        (
            "platform_balance",
            "platform:payouts_in_transit::EUR",
            "EUR",
            in_transit - 4_000,
            in_transit,
        ),
        ("platform_balance", "platform:fees::EUR", "EUR", fees - 100, fees),
    }


def test_it_finds_a_transaction_claiming_an_operation_in_another_state(books):
    leg = wallet_leg(books["bob"])
    tx = f"transaction:{leg.transaction_id}"
    clearing = _clearing()
    plant(
        "UPDATE finance_deposit SET state = 'failed' WHERE id = %s",
        [leg.transaction.operation_id],
    )

    assert found(scan()) == {
        ("transaction_claim", tx, "EUR", 0, leg.amount),
        ("platform_balance", CLEARING_EUR, "EUR", clearing + leg.amount, clearing),
    }


def test_it_finds_a_transaction_claiming_a_missing_operation(books):
    leg = wallet_leg(books["bob"])
    tx = f"transaction:{leg.transaction_id}"
    deposit_id = leg.transaction.operation_id
    plant(
        "UPDATE finance_ledgertransaction SET operation_id = 999999 WHERE id = %s",
        [leg.transaction_id],
    )

    assert found(scan()) == {
        ("transaction_claim", tx, "EUR", 0, leg.amount),
        (
            "operation_transaction",
            f"deposit:{deposit_id}/deposit_credit",
            "EUR",
            leg.amount,
            0,
        ),
    }


def test_it_finds_a_transaction_of_an_operation_kind_that_claims_nothing(books):
    leg = wallet_leg(books["bob"])
    tx = f"transaction:{leg.transaction_id}"
    deposit_id = leg.transaction.operation_id
    plant(
        "UPDATE finance_ledgertransaction SET operation_kind = '', operation_id = NULL "
        "WHERE id = %s",
        [leg.transaction_id],
    )

    assert found(scan()) == {
        ("transaction_claim", tx, "EUR", 0, leg.amount),
        (
            "operation_transaction",
            f"deposit:{deposit_id}/deposit_credit",
            "EUR",
            leg.amount,
            0,
        ),
    }


def test_it_finds_an_operation_whose_transaction_was_reversed(books):
    credit = wallet_leg(books["alice"]).transaction
    clearing = _clearing()
    with transaction.atomic():
        ledger_reverse(original=credit, idempotency_key="test:reverse", memo="test")

    amount = credit.postings.get(amount__gt=0).amount
    assert found(scan()) == {
        (
            "operation_transaction",
            f"deposit:{credit.operation_id}/deposit_credit",
            "EUR",
            amount,
            0,
        ),
        ("platform_balance", CLEARING_EUR, "EUR", clearing, clearing + amount),
    }


def test_it_finds_an_operation_with_its_transaction_posted_twice(books):
    credit = wallet_leg(books["alice"]).transaction
    amount = credit.postings.get(amount__gt=0).amount
    clearing = _clearing()
    with transaction.atomic():
        ledger_post(
            idempotency_key="test:second-credit",
            kind=LedgerTransaction.Kind.DEPOSIT_CREDIT,
            lines=[
                Line(
                    platform_account(
                        kind=Account.Kind.PROVIDER_CLEARING,
                        currency="EUR",
                        provider="sandbox",
                    ),
                    -amount,
                ),
                Line(books["alice"].account, amount),
            ],
            operation_kind="deposit",
            operation_id=credit.operation_id,
        )

    assert found(scan()) == {
        (
            "operation_transaction",
            f"deposit:{credit.operation_id}/deposit_credit",
            "EUR",
            amount,
            2 * amount,
        ),
        ("platform_balance", CLEARING_EUR, "EUR", clearing, clearing - amount),
    }


def test_it_finds_platform_accounts_where_the_operations_do_not_put_them(books):
    fees = _posted(Account.Kind.FEES)
    with transaction.atomic():
        ledger_post(
            idempotency_key="test:adjustment",
            kind=LedgerTransaction.Kind.ADJUSTMENT,
            lines=[
                Line(platform_account(kind="suspense", currency="EUR"), -100),
                Line(platform_account(kind="fees", currency="EUR"), 100),
            ],
        )

    assert found(scan()) == {
        ("platform_balance", "platform:suspense::EUR", "EUR", 0, -100),
        ("platform_balance", "platform:fees::EUR", "EUR", fees, fees + 100),
    }


def test_it_reports_the_difference_as_actual_minus_expected(books):
    alice = books["alice"]
    break_wallet(alice, by=-40)

    result = scan(checks=["wallets"])

    finding = result_finding(result)
    assert (finding.expected, finding.actual, finding.difference) == (
        alice.balance,
        alice.balance - 40,
        -40,
    )
    assert finding.wallet_id == alice.pk
    assert finding.suspect_transaction_ids


def result_finding(result):
    from reconciliation.models import Finding

    return Finding.objects.get(scan_id=result.scan_id)
