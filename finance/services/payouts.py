"""Payout state changes, whoever reports them: the provider's answer, a
webhook, a poll, a safe retry or an approved override all come through here.

Locks are taken payout first, then its withdrawal, everywhere.
"""

from django.db import transaction
from django.utils import timezone

from finance.models import Account, LedgerTransaction, Payout, Wallet, Withdrawal
from finance.services.ledger import Line, ledger_post, platform_account
from finance.services.transitions import ensure_can, lock, transition
from finance.services.withdrawals import release_hold
from finance.states import PayoutState, WithdrawalState

OPERATION = LedgerTransaction.OperationKind.PAYOUT


def _lock_pair(payout_id: int) -> tuple[Payout, Withdrawal]:
    payout = lock(Payout, payout_id)
    return payout, lock(Withdrawal, payout.withdrawal_id)


def _set_reference(payout: Payout, provider_reference: str | None) -> None:
    if provider_reference and payout.provider_reference != provider_reference:
        if payout.provider_reference:
            raise ValueError(
                f"payout {payout.pk} already has provider reference "
                f"{payout.provider_reference}"
            )
        payout.provider_reference = provider_reference
        payout.save(update_fields=["provider_reference"])


@transaction.atomic
def payout_accept(*, payout_id: int, provider_reference: str, via: str) -> Payout:
    """The provider took the payout and is processing it."""
    payout = lock(Payout, payout_id)
    if payout.state != PayoutState.CREATED:
        # The final webhook may already have arrived; acceptance adds nothing.
        return payout
    _set_reference(payout, provider_reference)
    payout.submitted_at = timezone.now()
    payout.save(update_fields=["submitted_at"])
    return transition(
        payout,
        to=PayoutState.PROCESSING,
        via=via,
        reason="provider accepted the payout",
    )


@transaction.atomic
def payout_pay(
    *,
    payout_id: int,
    via: str,
    reason: str,
    provider_reference: str | None = None,
    actor=None,
) -> Payout:
    """The provider has sent the money: move it out of transit."""
    payout, withdrawal = _lock_pair(payout_id)
    ensure_can(payout, PayoutState.PAID)
    ensure_can(withdrawal, WithdrawalState.COMPLETED)
    _set_reference(payout, provider_reference)

    ledger_tx, _ = ledger_post(
        idempotency_key=f"payout:{payout.pk}:paid",
        kind=LedgerTransaction.Kind.PAYOUT_PAID,
        lines=[
            Line(
                platform_account(
                    kind=Account.Kind.PAYOUTS_IN_TRANSIT, currency=payout.currency
                ),
                -payout.amount,
            ),
            Line(_clearing(payout), payout.amount),
        ],
        operation_kind=OPERATION,
        operation_id=payout.pk,
        created_by=actor,
    )
    payout.settled_at = timezone.now()
    payout.save(update_fields=["settled_at"])
    transition(
        payout,
        to=PayoutState.PAID,
        via=via,
        reason=reason,
        actor=actor,
        ledger_tx=ledger_tx,
    )
    transition(
        withdrawal, to=WithdrawalState.COMPLETED, via=via, reason=reason, actor=actor
    )
    return payout


@transaction.atomic
def payout_fail(*, payout_id: int, via: str, reason: str, actor=None) -> Payout:
    """The provider will not send the money: give it back to the wallet."""
    payout, withdrawal = _lock_pair(payout_id)
    ensure_can(payout, PayoutState.FAILED)
    ensure_can(withdrawal, WithdrawalState.FAILED)

    ledger_tx = release_hold(withdrawal, actor=actor)
    payout.last_error = reason[:500]
    payout.settled_at = timezone.now()
    payout.save(update_fields=["last_error", "settled_at"])
    transition(payout, to=PayoutState.FAILED, via=via, reason=reason, actor=actor)
    transition(
        withdrawal,
        to=WithdrawalState.FAILED,
        via=via,
        reason=reason,
        actor=actor,
        ledger_tx=ledger_tx,
    )
    return payout


@transaction.atomic
def payout_return(*, payout_id: int, via: str, reason: str, actor=None) -> Payout:
    """The bank sent a paid payout back (closed account, wrong name, reversal)."""
    payout, withdrawal = _lock_pair(payout_id)
    ensure_can(payout, PayoutState.RETURNED)
    ensure_can(withdrawal, WithdrawalState.RETURNED)

    wallet = Wallet.objects.select_related("account").get(pk=payout.wallet_id)
    ledger_tx, _ = ledger_post(
        idempotency_key=f"payout:{payout.pk}:returned",
        kind=LedgerTransaction.Kind.PAYOUT_RETURNED,
        lines=[
            Line(_clearing(payout), -payout.amount),
            Line(wallet.account, payout.amount),
        ],
        operation_kind=OPERATION,
        operation_id=payout.pk,
        created_by=actor,
    )
    transition(
        payout,
        to=PayoutState.RETURNED,
        via=via,
        reason=reason,
        actor=actor,
        ledger_tx=ledger_tx,
    )
    transition(
        withdrawal, to=WithdrawalState.RETURNED, via=via, reason=reason, actor=actor
    )
    return payout


def _clearing(payout: Payout) -> Account:
    return platform_account(
        kind=Account.Kind.PROVIDER_CLEARING,
        currency=payout.currency,
        provider=payout.provider,
    )
