"""Books for the deep-scan tests, built through finance.services, and ways to
break them.

Every deep-scan test commits its data (the scan reads through its own
connection), so those tests use ``django_db(transaction=True)``.
"""

from django.db import connection, transaction

from finance.models import Posting
from finance.services.deposits import deposit_charge_back
from finance.services.payouts import payout_fail, payout_pay, payout_return
from finance.services.withdrawals import withdrawal_cancel
from reconciliation.models import Finding
from reconciliation.services.deep import deep_reconcile_run
from tests.factories import make_deposit, make_payout, make_wallet, make_withdrawal


def build_books() -> dict:
    """One of every operation state that moves money, in EUR and USD."""
    alice = make_wallet(balance=50_000)
    bob = make_wallet(balance=30_000)
    dollars = make_wallet(currency="USD", balance=9_000)

    charged_back = make_deposit(wallet=dollars, amount=2_000, succeed=True)
    deposit_charge_back(deposit_id=charged_back.pk, via="test", reason="dispute")
    pending = make_deposit(wallet=alice, amount=700)

    requested = make_withdrawal(wallet=alice, amount=4_000, fee=100)
    cancelled = make_withdrawal(wallet=alice, amount=1_000, fee=25)
    withdrawal_cancel(withdrawal_id=cancelled.pk, via="test", reason="customer")
    processing = make_payout(wallet=bob, amount=3_000, fee=50)
    paid = make_payout(wallet=bob, amount=2_500, fee=0)
    payout_pay(payout_id=paid.pk, via="test", reason="provider paid")
    failed = make_payout(wallet=bob, amount=1_500, fee=10)
    payout_fail(payout_id=failed.pk, via="test", reason="bank refused")
    returned = make_payout(wallet=alice, amount=1_200, fee=0)
    payout_pay(payout_id=returned.pk, via="test", reason="provider paid")
    payout_return(payout_id=returned.pk, via="test", reason="account closed")

    for wallet in (alice, bob, dollars):
        wallet.refresh_from_db()
    return {
        "alice": alice,
        "bob": bob,
        "dollars": dollars,
        "charged_back": charged_back,
        "pending": pending,
        "requested": requested,
        "cancelled": cancelled,
        "processing": processing,
        "paid": paid,
        "failed": failed,
        "returned": returned,
    }


def plant(sql: str, params=None) -> None:
    """Break the books by hand, past the ledger's triggers and foreign keys."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])


def break_wallet(wallet, *, by: int) -> None:
    """Move a wallet's cached balance away from its postings."""
    plant(
        "UPDATE finance_wallet SET balance = balance + %s WHERE id = %s",
        [by, wallet.pk],
    )


def wallet_leg(wallet) -> Posting:
    """The wallet's posting of its first deposit credit."""
    return Posting.objects.filter(
        account_id=wallet.account_id, transaction__kind="deposit_credit"
    ).earliest("id")


def scan(**options):
    options.setdefault("ranges", 3)
    options.setdefault("settle_tickets", False)
    return deep_reconcile_run(via="test", workers="threads", **options)


def found(result) -> set[tuple]:
    """What a scan found, as (invariant, subject, currency, expected, actual)."""
    return set(
        Finding.objects.filter(scan_id=result.scan_id).values_list(
            "invariant", "subject_key", "currency", "expected", "actual"
        )
    )
