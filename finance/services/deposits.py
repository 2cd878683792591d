from django.db import transaction

from finance.models import Account, Customer, Deposit, LedgerTransaction, Wallet
from finance.money import MoneyError, validate_amount, validate_currency
from finance.services.ledger import Line, ledger_post, platform_account
from finance.services.transitions import ensure_can, lock, transition
from finance.states import DepositState


def deposit_create(
    *,
    wallet: Wallet,
    amount: int,
    currency: str,
    provider: str,
    provider_reference: str | None = None,
) -> Deposit:
    """Record a deposit the customer has started; no money moves yet."""
    validate_amount(amount)
    validate_currency(currency)
    if currency != wallet.currency:
        raise MoneyError(
            f"a {currency} deposit cannot go to a {wallet.currency} wallet"
        )
    return Deposit.objects.create(
        customer_id=wallet.customer_id,
        wallet=wallet,
        amount=amount,
        currency=currency,
        provider=provider,
        provider_reference=provider_reference,
    )


def _clearing(deposit: Deposit) -> Account:
    return platform_account(
        kind=Account.Kind.PROVIDER_CLEARING,
        currency=deposit.currency,
        provider=deposit.provider,
    )


def _set_reference(deposit: Deposit, provider_reference: str | None) -> None:
    """Learn the provider's id of a deposit we only knew by our reference."""
    if provider_reference and deposit.provider_reference != provider_reference:
        if deposit.provider_reference:
            raise ValueError(
                f"deposit {deposit.pk} already has provider reference "
                f"{deposit.provider_reference}"
            )
        deposit.provider_reference = provider_reference
        deposit.save(update_fields=["provider_reference"])


@transaction.atomic
def deposit_succeed(
    *,
    deposit_id: int,
    via: str,
    reason: str,
    provider_reference: str | None = None,
    actor=None,
) -> Deposit:
    """The provider has the customer's money: credit the wallet."""
    deposit = lock(Deposit, deposit_id)
    wallet = Wallet.objects.select_related("account").get(pk=deposit.wallet_id)
    ensure_can(deposit, DepositState.SUCCEEDED)
    _set_reference(deposit, provider_reference)
    ledger_tx, _ = ledger_post(
        idempotency_key=f"deposit:{deposit.pk}:credit",
        kind=LedgerTransaction.Kind.DEPOSIT_CREDIT,
        lines=[
            Line(_clearing(deposit), -deposit.amount),
            Line(wallet.account, deposit.amount),
        ],
        operation_kind=LedgerTransaction.OperationKind.DEPOSIT,
        operation_id=deposit.pk,
        created_by=actor,
    )
    transition(
        deposit,
        to=DepositState.SUCCEEDED,
        via=via,
        reason=reason,
        actor=actor,
        ledger_tx=ledger_tx,
    )
    _mark_first_deposit(deposit.customer_id, deposit.state_changed_at)
    return deposit


def _mark_first_deposit(customer_id: int, when) -> None:
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    if customer.first_deposit_at is None:
        customer.first_deposit_at = when
        customer._change_reason = "first successful deposit"  # type: ignore[attr-defined]
        customer.save(update_fields=["first_deposit_at"])


@transaction.atomic
def deposit_fail(
    *,
    deposit_id: int,
    via: str,
    reason: str,
    provider_reference: str | None = None,
    actor=None,
) -> Deposit:
    deposit = lock(Deposit, deposit_id)
    ensure_can(deposit, DepositState.FAILED)
    _set_reference(deposit, provider_reference)
    return transition(
        deposit, to=DepositState.FAILED, via=via, reason=reason, actor=actor
    )


@transaction.atomic
def deposit_charge_back(
    *, deposit_id: int, via: str, reason: str, actor=None
) -> Deposit:
    """The card holder disputed a succeeded deposit and the provider took it back.

    The wallet is debited even if that leaves it negative: the money is
    already gone, and a negative wallet is what operations must chase.
    """
    deposit = lock(Deposit, deposit_id)
    wallet = Wallet.objects.select_related("account").get(pk=deposit.wallet_id)
    ensure_can(deposit, DepositState.CHARGED_BACK)
    ledger_tx, _ = ledger_post(
        idempotency_key=f"deposit:{deposit.pk}:chargeback",
        kind=LedgerTransaction.Kind.DEPOSIT_CHARGEBACK,
        lines=[
            Line(wallet.account, -deposit.amount),
            Line(_clearing(deposit), deposit.amount),
        ],
        operation_kind=LedgerTransaction.OperationKind.DEPOSIT,
        operation_id=deposit.pk,
        created_by=actor,
        allow_overdraft=True,
    )
    return transition(
        deposit,
        to=DepositState.CHARGED_BACK,
        via=via,
        reason=reason,
        actor=actor,
        ledger_tx=ledger_tx,
    )
