"""The state machines of deposits, withdrawals and payouts.

Each machine lists every allowed move; anything else is refused. The ledger
effect of each move lives in the services that make it (finance/services/).
"""

from dataclasses import dataclass

from django.db import models


class DepositState(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CHARGED_BACK = "charged_back"


class WithdrawalState(models.TextChoices):
    REQUESTED = "requested"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETURNED = "returned"


class PayoutState(models.TextChoices):
    CREATED = "created"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    RETURNED = "returned"


class IllegalTransition(Exception):
    def __init__(self, machine: str, current: str, target: str):
        self.machine, self.current, self.target = machine, current, target
        super().__init__(f"{machine} cannot move from {current} to {target}")


@dataclass(frozen=True)
class StateMachine:
    name: str
    moves: dict[str, frozenset[str]]

    def check(self, current: str, target: str) -> None:
        if target not in self.moves.get(current, frozenset()):
            raise IllegalTransition(self.name, current, target)

    def can(self, current: str, target: str) -> bool:
        return target in self.moves.get(current, frozenset())

    @property
    def final_states(self) -> frozenset[str]:
        states = set(self.moves) | {s for t in self.moves.values() for s in t}
        return frozenset(s for s in states if not self.moves.get(s))


_D, _W, _P = DepositState, WithdrawalState, PayoutState

DEPOSIT_MACHINE = StateMachine(
    "deposit",
    {
        _D.PENDING: frozenset({_D.SUCCEEDED, _D.FAILED}),
        # A card payment can be disputed weeks after it succeeded.
        _D.SUCCEEDED: frozenset({_D.CHARGED_BACK}),
    },
)

WITHDRAWAL_MACHINE = StateMachine(
    "withdrawal",
    {
        _W.REQUESTED: frozenset({_W.PROCESSING, _W.CANCELLED, _W.FAILED}),
        _W.PROCESSING: frozenset({_W.COMPLETED, _W.FAILED}),
        _W.COMPLETED: frozenset({_W.RETURNED}),
    },
)

PAYOUT_MACHINE = StateMachine(
    "payout",
    {
        # The provider's webhook can beat the answer to our own request, so a
        # created payout may become paid or failed without passing processing.
        _P.CREATED: frozenset({_P.PROCESSING, _P.PAID, _P.FAILED}),
        _P.PROCESSING: frozenset({_P.PAID, _P.FAILED}),
        # Banks return transfers days later (closed account, wrong name).
        _P.PAID: frozenset({_P.RETURNED}),
    },
)
