from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from finance.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    UnbalancedTransaction,
)
from finance.models import Account, LedgerTransaction, Posting, Wallet


@dataclass(frozen=True)
class Line:
    account: Account
    amount: int


def platform_account(*, kind: str, currency: str, provider: str = "") -> Account:
    """The platform's account of ``kind`` in ``currency``, created on first use."""
    name = " ".join(
        part for part in (kind.replace("_", " "), provider, currency) if part
    )
    account, _ = Account.objects.get_or_create(
        kind=kind, currency=currency, provider=provider, defaults={"name": name}
    )
    return account


def _validate(lines: Sequence[Line]) -> None:
    if len(lines) < 2:
        raise UnbalancedTransaction("a transaction needs at least two postings")
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        if isinstance(line.amount, bool) or not isinstance(line.amount, int):
            raise UnbalancedTransaction("posting amounts must be integers")
        if line.amount == 0:
            raise UnbalancedTransaction("a posting cannot be zero")
        totals[line.account.currency] += line.amount
    unbalanced = {cur: total for cur, total in totals.items() if total}
    if unbalanced:
        raise UnbalancedTransaction(f"postings do not sum to zero: {unbalanced}")


def _same_lines(existing: LedgerTransaction, lines: Sequence[Line]) -> bool:
    stored = sorted(existing.postings.values_list("account_id", "amount"))
    return stored == sorted((line.account.pk, line.amount) for line in lines)


def ledger_post(
    *,
    idempotency_key: str,
    kind: str,
    lines: Sequence[Line],
    operation_kind: str = "",
    operation_id: int | None = None,
    memo: str = "",
    created_by=None,
    reverses: LedgerTransaction | None = None,
    allow_overdraft: bool = False,
) -> tuple[LedgerTransaction, bool]:
    """Write one balanced journal transaction; return it and whether it is new.

    Must be called inside ``transaction.atomic``, together with the state
    change that causes it.

    1. Check the lines: integer non-zero amounts summing to zero per currency.
    2. Insert the transaction row under a savepoint. If its idempotency key
       is taken (by an earlier call, or by a concurrent one that has just
       committed) return the stored transaction when it has the same lines,
       and refuse when it does not.
    3. Insert every posting in one statement: the database checks balance
       per statement (migration 0002).
    4. Move the cached balance of each wallet touched, in account order so
       that concurrent posters queue instead of deadlocking. The UPDATE adds
       to the stored value, so no concurrent update is lost; a debit that
       would overdraw a wallet matches no row and raises InsufficientFunds,
       which rolls the whole transaction back.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_post must run inside transaction.atomic")
    _validate(lines)

    try:
        with transaction.atomic():
            ledger_tx = LedgerTransaction.objects.create(
                idempotency_key=idempotency_key,
                kind=kind,
                operation_kind=operation_kind,
                operation_id=operation_id,
                memo=memo,
                created_by=created_by,
                reverses=reverses,
            )
    except IntegrityError:
        existing = LedgerTransaction.objects.get(idempotency_key=idempotency_key)
        if not _same_lines(existing, lines):
            raise IdempotencyConflict(
                f"ledger key {idempotency_key} was used for different postings"
            ) from None
        return existing, False

    Posting.objects.bulk_create(
        Posting(
            transaction=ledger_tx,
            account=line.account,
            amount=line.amount,
            currency=line.account.currency,
            created_at=ledger_tx.created_at,
        )
        for line in lines
    )

    deltas: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.account.kind == Account.Kind.WALLET:
            deltas[line.account.pk] += line.amount
    for account_id in sorted(deltas):
        delta = deltas[account_id]
        wallets = Wallet.objects.filter(account_id=account_id)
        if delta < 0 and not allow_overdraft:
            wallets = wallets.filter(balance__gte=-delta)
        if wallets.update(balance=F("balance") + delta) != 1:
            raise InsufficientFunds(
                f"wallet account {account_id} cannot cover {-delta} minor units"
            )
    return ledger_tx, True


def ledger_reverse(
    *, original: LedgerTransaction, idempotency_key: str, memo: str, created_by=None
) -> tuple[LedgerTransaction, bool]:
    """Post the mirror image of ``original``: the only way to undo postings."""
    lines = [
        Line(account=posting.account, amount=-posting.amount)
        for posting in original.postings.select_related("account")
    ]
    return ledger_post(
        idempotency_key=idempotency_key,
        kind=LedgerTransaction.Kind.REVERSAL,
        lines=lines,
        operation_kind=original.operation_kind,
        operation_id=original.operation_id,
        memo=memo,
        created_by=created_by,
        reverses=original,
        allow_overdraft=True,
    )
