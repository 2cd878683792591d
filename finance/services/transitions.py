from django.db import connection
from django.utils import timezone

from finance.models import Deposit, Payout, Withdrawal
from finance.states import DEPOSIT_MACHINE, PAYOUT_MACHINE, WITHDRAWAL_MACHINE

MACHINES = {
    Deposit: DEPOSIT_MACHINE,
    Withdrawal: WITHDRAWAL_MACHINE,
    Payout: PAYOUT_MACHINE,
}


def lock(model, pk):
    """Fetch one operation row with a row lock held to the end of the transaction."""
    return model.objects.select_for_update().get(pk=pk)


def ensure_can(operation, to: str) -> None:
    """Raise IllegalTransition now, before any postings for the move are written."""
    MACHINES[type(operation)].check(operation.state, to)


def transition(
    operation, *, to: str, via: str, reason: str, actor=None, ledger_tx=None
):
    """Move a locked operation to ``to`` and record who moved it and why.

    The caller holds the row lock (``lock``) inside the transaction that
    also writes the move's postings, so the move and its money commit or
    fail together. Raises IllegalTransition for a move the machine forbids.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("transition must run inside transaction.atomic")
    if not reason:
        raise ValueError("a transition needs a reason")
    MACHINES[type(operation)].check(operation.state, to)

    from_state = operation.state
    operation.state = to
    operation.state_changed_at = timezone.now()
    operation.version += 1
    # simple-history keeps 100 characters; the transition row keeps 500.
    operation._change_reason = reason[:100]
    operation.save(update_fields=["state", "state_changed_at", "version"])
    operation.transitions.create(
        from_state=from_state,
        to_state=to,
        actor=actor,
        via=via,
        reason=reason[:500],
        ledger_transaction=ledger_tx,
        created_at=operation.state_changed_at,
    )
    return operation


def record_creation(operation, *, via: str, reason: str, actor=None, ledger_tx=None):
    """Record the birth of an operation on its timeline, as a move from nothing."""
    operation.transitions.create(
        from_state="",
        to_state=operation.state,
        actor=actor,
        via=via,
        reason=reason[:500],
        ledger_transaction=ledger_tx,
        created_at=operation.created_at,
    )
