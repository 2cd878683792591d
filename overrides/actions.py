"""The catalogue of override actions: the only fixes an override can make.

Each action names the target kinds it applies to, validates its parameters
on the server (a Django form used as a schema: minor units, known
currencies, references), says without writing anything exactly what it will
do (``preview``: the state changes and the ledger postings), and does it by
calling the finance services that normal processing uses (``execute``).
Free-form SQL is not an action, and nothing here writes a finance table.

Add an action by subclassing ``OverrideAction`` and decorating it with
``@register``; the admin offers it at once.
"""

from dataclasses import asdict, dataclass, field
from typing import ClassVar, cast

from django import forms
from django.conf import settings
from django.db.models import Sum

from finance.models import (
    Account,
    Deposit,
    LedgerTransaction,
    Payout,
    Posting,
    Wallet,
    Withdrawal,
)
from finance.money import MAX_AMOUNT, format_amount
from finance.services.deposits import deposit_charge_back
from finance.services.ledger import Line, ledger_post, platform_account
from finance.services.payouts import payout_fail, payout_pay
from finance.states import (
    DEPOSIT_MACHINE,
    PAYOUT_MACHINE,
    WITHDRAWAL_MACHINE,
    DepositState,
    PayoutState,
    WithdrawalState,
)
from overrides.errors import ActionNotApplicable, InvalidParams, UnknownAction

TARGET_MODELS: dict[str, type[Deposit | Withdrawal | Payout]] = {
    "deposit": Deposit,
    "withdrawal": Withdrawal,
    "payout": Payout,
}


def target_get(kind: str, pk: int, *, lock: bool = False):
    """The deposit, withdrawal or payout ``pk``; locked when asked."""
    try:
        model = TARGET_MODELS[kind]
    except KeyError:
        raise ActionNotApplicable(f"unknown target kind {kind!r}") from None
    queryset = model.objects.select_for_update() if lock else model.objects
    try:
        return queryset.get(pk=pk)
    except model.DoesNotExist:
        raise ActionNotApplicable(f"there is no {kind} {pk}") from None


# --- what a preview says -------------------------------------------------


@dataclass(frozen=True)
class StateChange:
    kind: str
    id: int
    version: int
    from_state: str
    to_state: str


@dataclass(frozen=True)
class PlannedPosting:
    account: str  # the ledger's name of the account
    label: str  # how a person knows it
    account_kind: str
    account_id: int | None  # None: a platform account created on first use
    amount: int
    currency: str
    balance_before: int
    balance_after: int

    @property
    def amount_display(self) -> str:
        return format_amount(self.amount, self.currency)

    @property
    def balance_after_display(self) -> str:
        return format_amount(self.balance_after, self.currency)


@dataclass(frozen=True)
class Preview:
    summary: str
    state_changes: list[StateChange]
    ledger_kind: str = ""
    ledger_key: str = ""
    postings: list[PlannedPosting] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def posting_lines(self) -> list[tuple[str, int]]:
        """(account name, amount) pairs, sorted: what the ledger must get."""
        return sorted((p.account, p.amount) for p in self.postings)


def _balance(account: Account | None) -> int:
    if account is None:
        return 0
    if account.kind == Account.Kind.WALLET:
        return Wallet.objects.get(account=account).balance
    total = Posting.objects.filter(account=account).aggregate(total=Sum("amount"))
    return total["total"] or 0


def _planned(account: Account | None, *, name, label, kind, amount, currency):
    before = _balance(account)
    return PlannedPosting(
        account=name,
        label=label,
        account_kind=kind,
        account_id=account.pk if account else None,
        amount=amount,
        currency=currency,
        balance_before=before,
        balance_after=before + amount,
    )


def _platform(kind: str, currency: str, amount: int, provider: str = ""):
    """A posting on a platform account, looked up but never created here."""
    name = " ".join(
        part for part in (kind.replace("_", " "), provider, currency) if part
    )
    account = Account.objects.filter(
        kind=kind, currency=currency, provider=provider
    ).first()
    return _planned(
        account, name=name, label=name, kind=kind, amount=amount, currency=currency
    )


def _wallet(wallet: Wallet, amount: int):
    return _planned(
        wallet.account,
        name=wallet.account.name,
        label=f"wallet {wallet.pk} of {wallet.customer} ({wallet.currency})",
        kind=Account.Kind.WALLET,
        amount=amount,
        currency=wallet.currency,
    )


def _change(operation, to_state: str) -> StateChange:
    return StateChange(
        kind=type(operation).__name__.lower(),
        id=operation.pk,
        version=operation.version,
        from_state=operation.state,
        to_state=to_state,
    )


def _wallet_of(operation) -> Wallet:
    return Wallet.objects.select_related("account", "customer").get(
        pk=operation.wallet_id
    )


# --- the catalogue ---------------------------------------------------------


class NoParams(forms.Form):
    pass


class OverrideAction:
    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]
    target_kinds: ClassVar[tuple[str, ...]]
    params_form: ClassVar[type[forms.Form]] = NoParams

    def clean_params(self, params) -> dict:
        """The parameters as the action will use them, or InvalidParams."""
        if not isinstance(params, dict):
            raise InvalidParams({"params": ["must be an object of named values"]})
        form = self.params_form(data=params)
        unknown = sorted(set(params) - set(form.fields))
        errors = {name: ["is not a parameter of this action"] for name in unknown}
        if not form.is_valid():
            errors.update(
                {
                    name: [str(m) for m in messages]
                    for name, messages in form.errors.items()
                }
            )
        if errors:
            raise InvalidParams(errors)
        return dict(form.cleaned_data)

    def preview(self, target, params: dict, *, override_id=None) -> Preview:
        """What ``execute`` will do to ``target`` as it stands; writes nothing.

        Raises ActionNotApplicable when the action cannot apply now.
        """
        raise NotImplementedError

    def execute(self, target, params: dict, *, override, actor) -> list:
        """Do it through the finance services; return the journal transactions.

        Runs inside the caller's transaction with the target row locked.
        """
        raise NotImplementedError


ACTIONS: dict[str, OverrideAction] = {}


def register(cls):
    ACTIONS[cls.name] = cls()
    return cls


def action_get(name: str) -> OverrideAction:
    try:
        return ACTIONS[name]
    except (KeyError, TypeError):
        raise UnknownAction(f"there is no override action {name!r}") from None


def action_choices(target_kind: str | None = None) -> list[tuple[str, str]]:
    return [
        (action.name, action.label)
        for action in ACTIONS.values()
        if target_kind is None or target_kind in action.target_kinds
    ]


def transition_reason(override) -> str:
    return f"override {override.pk} ({override.ticket_reference}): {override.reason}"


def _require(machine, operation, to_state: str) -> None:
    if not machine.can(operation.state, to_state):
        raise ActionNotApplicable(
            f"{machine.name} {operation.pk} is {operation.state}; "
            f"it cannot become {to_state}"
        )


def _ledger_tx(key: str) -> LedgerTransaction:
    return LedgerTransaction.objects.get(idempotency_key=key)


@register
class PayoutFailAction(OverrideAction):
    name = "payout_fail"
    label = "Mark the payout failed and return the funds to the wallet"
    description = (
        "For a payout the provider will never send (it says so, or it has no "
        "record of it). The withdrawal fails and its amount and fee go back "
        "to the customer's wallet."
    )
    target_kinds = ("payout",)

    def preview(self, target, params, *, override_id=None) -> Preview:
        withdrawal = Withdrawal.objects.get(pk=target.withdrawal_id)
        _require(PAYOUT_MACHINE, target, PayoutState.FAILED)
        _require(WITHDRAWAL_MACHINE, withdrawal, WithdrawalState.FAILED)
        wallet = _wallet_of(target)
        currency = withdrawal.currency
        postings = [
            _platform(Account.Kind.PAYOUTS_IN_TRANSIT, currency, -withdrawal.amount)
        ]
        if withdrawal.fee:
            postings.append(_platform(Account.Kind.FEES, currency, -withdrawal.fee))
        postings.append(_wallet(wallet, withdrawal.amount + withdrawal.fee))
        back = format_amount(withdrawal.amount + withdrawal.fee, currency)
        return Preview(
            summary=f"Payout {target.pk} becomes failed; {back} goes back "
            "to the wallet.",
            state_changes=[
                _change(target, PayoutState.FAILED),
                _change(withdrawal, WithdrawalState.FAILED),
            ],
            ledger_kind=LedgerTransaction.Kind.WITHDRAWAL_RELEASE,
            ledger_key=f"withdrawal:{withdrawal.pk}:release",
            postings=postings,
        )

    def execute(self, target, params, *, override, actor) -> list:
        payout_fail(
            payout_id=target.pk,
            via="override",
            reason=transition_reason(override),
            actor=actor,
        )
        return [_ledger_tx(f"withdrawal:{target.withdrawal_id}:release")]


class ProviderReferenceForm(forms.Form):
    provider_reference = forms.CharField(
        max_length=100,
        help_text="The provider's id of the transfer, from its dashboard or support.",
    )


@register
class PayoutPayAction(OverrideAction):
    name = "payout_pay"
    label = "Mark the payout paid against a provider reference"
    description = (
        "For a payout the provider sent but never reported (no webhook). The "
        "withdrawal completes and the amount leaves payouts in transit for "
        "provider clearing."
    )
    target_kinds = ("payout",)
    params_form = ProviderReferenceForm

    def preview(self, target, params, *, override_id=None) -> Preview:
        withdrawal = Withdrawal.objects.get(pk=target.withdrawal_id)
        _require(PAYOUT_MACHINE, target, PayoutState.PAID)
        _require(WITHDRAWAL_MACHINE, withdrawal, WithdrawalState.COMPLETED)
        reference = params["provider_reference"]
        if target.provider_reference and target.provider_reference != reference:
            raise ActionNotApplicable(
                f"payout {target.pk} already has provider reference "
                f"{target.provider_reference}"
            )
        taken = (
            Payout.objects.filter(
                provider=target.provider, provider_reference=reference
            )
            .exclude(pk=target.pk)
            .values_list("pk", flat=True)
            .first()
        )
        if taken:
            raise ActionNotApplicable(
                f"provider reference {reference} belongs to payout {taken}"
            )
        amount, currency = target.amount, target.currency
        return Preview(
            summary=(
                f"Payout {target.pk} becomes paid ({reference}); "
                f"{format_amount(amount, currency)} leaves payouts in transit."
            ),
            state_changes=[
                _change(target, PayoutState.PAID),
                _change(withdrawal, WithdrawalState.COMPLETED),
            ],
            ledger_kind=LedgerTransaction.Kind.PAYOUT_PAID,
            ledger_key=f"payout:{target.pk}:paid",
            postings=[
                _platform(Account.Kind.PAYOUTS_IN_TRANSIT, currency, -amount),
                _platform(
                    Account.Kind.PROVIDER_CLEARING, currency, amount, target.provider
                ),
            ],
        )

    def execute(self, target, params, *, override, actor) -> list:
        payout_pay(
            payout_id=target.pk,
            via="override",
            reason=transition_reason(override),
            provider_reference=params["provider_reference"],
            actor=actor,
        )
        return [_ledger_tx(f"payout:{target.pk}:paid")]


class ChargebackForm(forms.Form):
    chargeback_reference = forms.CharField(
        max_length=100, help_text="The provider's id of the dispute or chargeback."
    )


@register
class DepositChargeBackAction(OverrideAction):
    name = "deposit_charge_back"
    label = "Reverse a deposit the provider charged back"
    description = (
        "For a succeeded deposit whose chargeback the provider never reported. "
        "The wallet is debited even below zero: the money is already gone."
    )
    target_kinds = ("deposit",)
    params_form = ChargebackForm

    def preview(self, target, params, *, override_id=None) -> Preview:
        _require(DEPOSIT_MACHINE, target, DepositState.CHARGED_BACK)
        wallet = _wallet_of(target)
        amount, currency = target.amount, target.currency
        debit = _wallet(wallet, -amount)
        notes = []
        if debit.balance_after < 0:
            notes.append(f"The wallet will be negative: {debit.balance_after_display}.")
        return Preview(
            summary=(
                f"Deposit {target.pk} becomes charged back "
                f"({params['chargeback_reference']}); "
                f"{format_amount(amount, currency)} leaves the wallet."
            ),
            state_changes=[_change(target, DepositState.CHARGED_BACK)],
            ledger_kind=LedgerTransaction.Kind.DEPOSIT_CHARGEBACK,
            ledger_key=f"deposit:{target.pk}:chargeback",
            postings=[
                debit,
                _platform(
                    Account.Kind.PROVIDER_CLEARING, currency, amount, target.provider
                ),
            ],
            notes=notes,
        )

    def execute(self, target, params, *, override, actor) -> list:
        deposit_charge_back(
            deposit_id=target.pk,
            via="override",
            reason=transition_reason(override),
            actor=actor,
        )
        return [_ledger_tx(f"deposit:{target.pk}:chargeback")]


class AdjustmentForm(forms.Form):
    direction = forms.ChoiceField(
        choices=[
            ("credit_wallet", "Credit the wallet, from suspense"),
            ("debit_wallet", "Debit the wallet, into suspense"),
        ]
    )
    amount = forms.IntegerField(
        min_value=1,
        max_value=MAX_AMOUNT,
        help_text="Minor units (cents): 1050 is 10.50.",
    )
    currency = forms.ChoiceField(choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        currency = cast(forms.ChoiceField, self.fields["currency"])
        currency.choices = [(code, code) for code in settings.SUPPORTED_CURRENCIES]


@register
class SuspenseAdjustmentAction(OverrideAction):
    name = "suspense_adjustment"
    label = "Post a balancing adjustment between the wallet and suspense"
    description = (
        "For money that is provably wrong on a wallet (a double credit, a "
        "missing refund) while the cause is investigated. The operation's "
        "state does not change; suspense holds the difference until it is "
        "explained."
    )
    target_kinds = ("deposit", "withdrawal", "payout")
    params_form = AdjustmentForm

    def _amounts(self, params) -> int:
        """The wallet's side of the adjustment: positive credits the wallet."""
        amount = params["amount"]
        return amount if params["direction"] == "credit_wallet" else -amount

    def preview(self, target, params, *, override_id=None) -> Preview:
        wallet = _wallet_of(target)
        if params["currency"] != wallet.currency:
            raise ActionNotApplicable(
                f"the wallet of {type(target).__name__.lower()} {target.pk} "
                f"holds {wallet.currency}, not {params['currency']}"
            )
        to_wallet = self._amounts(params)
        wallet_line = _wallet(wallet, to_wallet)
        notes = []
        if wallet_line.balance_after < 0:
            notes.append(
                "The wallet does not hold enough today: execution will be "
                "refused unless it does by then."
            )
        key = f"override:{override_id or '<this request>'}:adjustment"
        return Preview(
            summary=(
                f"{'Credit' if to_wallet > 0 else 'Debit'} the wallet with "
                f"{format_amount(abs(to_wallet), wallet.currency)} against suspense."
            ),
            state_changes=[],
            ledger_kind=LedgerTransaction.Kind.ADJUSTMENT,
            ledger_key=key,
            postings=[
                wallet_line,
                _platform(Account.Kind.SUSPENSE, wallet.currency, -to_wallet),
            ],
            notes=notes,
        )

    def execute(self, target, params, *, override, actor) -> list:
        wallet = _wallet_of(target)
        to_wallet = self._amounts(params)
        suspense = platform_account(
            kind=Account.Kind.SUSPENSE, currency=wallet.currency
        )
        ledger_tx, _ = ledger_post(
            idempotency_key=f"override:{override.pk}:adjustment",
            kind=LedgerTransaction.Kind.ADJUSTMENT,
            lines=[Line(wallet.account, to_wallet), Line(suspense, -to_wallet)],
            operation_kind=override.target_kind,
            operation_id=target.pk,
            memo=f"override {override.pk} ({override.ticket_reference}): "
            f"{override.reason}"[:500],
            created_by=actor,
        )
        return [ledger_tx]
