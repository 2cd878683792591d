import uuid
from functools import partial

import structlog
from django.conf import settings
from django.db import transaction

from finance.models import Account, LedgerTransaction, Payout, Wallet, Withdrawal
from finance.money import MoneyError, validate_amount, validate_currency
from finance.services.ledger import Line, ledger_post, platform_account
from finance.services.transitions import (
    ensure_can,
    lock,
    record_creation,
    transition,
)
from finance.states import WithdrawalState

log = structlog.get_logger(__name__)

OPERATION = LedgerTransaction.OperationKind.WITHDRAWAL


def _in_transit(currency: str) -> Account:
    return platform_account(kind=Account.Kind.PAYOUTS_IN_TRANSIT, currency=currency)


def _fees(currency: str) -> Account:
    return platform_account(kind=Account.Kind.FEES, currency=currency)


def _nonzero(*lines: Line) -> list[Line]:
    return [line for line in lines if line.amount]


@transaction.atomic
def withdrawal_request(
    *,
    wallet: Wallet,
    amount: int,
    currency: str,
    provider: str,
    destination_label: str,
    fee: int = 0,
    via: str,
    actor=None,
) -> Withdrawal:
    """Take ``amount`` plus ``fee`` out of the wallet and hold it for a payout.

    Raises InsufficientFunds, and writes nothing, when the wallet cannot
    cover both. Once committed, its payout starts by itself (a Celery task
    queued on commit) unless ``PAYOUT_AUTO_START`` is off.
    """
    validate_amount(amount)
    validate_currency(currency)
    if fee != 0:
        validate_amount(fee)
    if currency != wallet.currency:
        raise MoneyError(
            f"a {currency} withdrawal cannot come from a {wallet.currency} wallet"
        )
    withdrawal = Withdrawal.objects.create(
        customer_id=wallet.customer_id,
        wallet=wallet,
        amount=amount,
        fee=fee,
        currency=currency,
        provider=provider,
        destination_label=destination_label,
    )
    wallet = Wallet.objects.select_related("account").get(pk=wallet.pk)
    ledger_tx, _ = ledger_post(
        idempotency_key=f"withdrawal:{withdrawal.pk}:hold",
        kind=LedgerTransaction.Kind.WITHDRAWAL_HOLD,
        lines=_nonzero(
            Line(wallet.account, -(amount + fee)),
            Line(_in_transit(currency), amount),
            Line(_fees(currency), fee),
        ),
        operation_kind=OPERATION,
        operation_id=withdrawal.pk,
        created_by=actor,
    )
    record_creation(
        withdrawal,
        via=via,
        reason="customer requested a withdrawal",
        actor=actor,
        ledger_tx=ledger_tx,
    )
    if settings.PAYOUT_AUTO_START:
        transaction.on_commit(partial(_queue_payout, withdrawal.pk))
    return withdrawal


def _queue_payout(withdrawal_id: int) -> None:
    # Imported here because the tasks import these services.
    from finance.tasks import start_payout

    try:
        start_payout.delay(withdrawal_id)
    except Exception:
        # The withdrawal is committed and its money held; sweep_payouts
        # starts the payout once the broker is back.
        log.exception("payout.queue_failed", withdrawal_id=withdrawal_id)


def release_hold(withdrawal: Withdrawal, *, actor=None) -> LedgerTransaction:
    """Give a failed or cancelled withdrawal's amount and fee back to the wallet."""
    wallet = Wallet.objects.select_related("account").get(pk=withdrawal.wallet_id)
    ledger_tx, _ = ledger_post(
        idempotency_key=f"withdrawal:{withdrawal.pk}:release",
        kind=LedgerTransaction.Kind.WITHDRAWAL_RELEASE,
        lines=_nonzero(
            Line(_in_transit(withdrawal.currency), -withdrawal.amount),
            Line(_fees(withdrawal.currency), -withdrawal.fee),
            Line(wallet.account, withdrawal.amount + withdrawal.fee),
        ),
        operation_kind=OPERATION,
        operation_id=withdrawal.pk,
        created_by=actor,
    )
    return ledger_tx


@transaction.atomic
def withdrawal_cancel(
    *, withdrawal_id: int, via: str, reason: str, actor=None
) -> Withdrawal:
    withdrawal = lock(Withdrawal, withdrawal_id)
    ensure_can(withdrawal, WithdrawalState.CANCELLED)
    ledger_tx = release_hold(withdrawal, actor=actor)
    return transition(
        withdrawal,
        to=WithdrawalState.CANCELLED,
        via=via,
        reason=reason,
        actor=actor,
        ledger_tx=ledger_tx,
    )


@transaction.atomic
def payout_create(*, withdrawal_id: int, via: str, actor=None) -> Payout:
    """Create the provider transfer for a requested withdrawal.

    The payout's idempotency key comes from the withdrawal, so however the
    payout is submitted later the provider can only move the money once.
    """
    withdrawal = lock(Withdrawal, withdrawal_id)
    ensure_can(withdrawal, WithdrawalState.PROCESSING)
    payout = Payout.objects.create(
        withdrawal=withdrawal,
        customer_id=withdrawal.customer_id,
        wallet_id=withdrawal.wallet_id,
        amount=withdrawal.amount,
        currency=withdrawal.currency,
        provider=withdrawal.provider,
        idempotency_key=f"payout-{uuid.UUID(str(withdrawal.reference)).hex}",
    )
    record_creation(
        payout, via=via, reason="payout created for withdrawal", actor=actor
    )
    transition(
        withdrawal,
        to=WithdrawalState.PROCESSING,
        via=via,
        reason=f"payout {payout.pk} created",
        actor=actor,
    )
    return payout
