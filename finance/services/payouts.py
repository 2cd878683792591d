"""Payout state changes, whoever reports them: the provider's answer, a
webhook, a poll, a safe retry or an approved override all come through here.

Locks are taken payout first, then its withdrawal, everywhere. The calls to
the provider (``payout_submit``, ``payout_poll``) never hold a lock or an
open transaction while they wait for an answer.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from finance.errors import IllegalTransition, Mismatch
from finance.models import (
    Account,
    LedgerTransaction,
    Payout,
    PayoutAttempt,
    Wallet,
    Withdrawal,
)
from finance.provider import (
    ProviderConflict,
    ProviderError,
    ProviderObject,
    ProviderRejected,
    ProviderTimeout,
    provider_client,
)
from finance.services.ledger import Line, ledger_post, platform_account
from finance.services.transitions import ensure_can, lock, transition
from finance.services.withdrawals import payout_create, release_hold
from finance.states import PayoutState, WithdrawalState

log = structlog.get_logger(__name__)

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


# --- talking to the provider ---------------------------------------------


@dataclass(frozen=True)
class PayoutSubmission:
    """What one ``payout_submit`` call did.

    ``attempt`` is None when nothing was sent, and ``skipped`` says why.
    ``retryable`` is true when the same call later may succeed (timeout,
    conflict, provider unavailable); the payout is still ``created`` then.
    """

    payout: Payout
    attempt: PayoutAttempt | None
    skipped: str = ""
    retryable: bool = False


def _attempt_lease() -> timedelta:
    # An attempt still in flight after the longest possible call plus a
    # margin belongs to a worker that died before recording its outcome.
    return timedelta(
        seconds=settings.PROVIDER_CONNECT_TIMEOUT + settings.PROVIDER_READ_TIMEOUT + 60
    )


def payout_submit(*, payout_id: int, via: str, actor=None) -> PayoutSubmission:
    """Send a created payout to its provider and record what came back.

    1. Claim, in one short transaction: lock the payout; go on only if it
       is ``created`` and no other attempt is in flight (an in-flight attempt
       older than the lease is closed as abandoned); write attempt N+1 as
       in flight, bump ``attempt_count``, commit.
    2. Call the provider with no transaction open and no lock held, with the
       payout's idempotency key: however many attempts reach the provider,
       it creates one transfer for that key and replays its answer.
    3. Record, in a new transaction, the attempt's outcome and its effect:
       accepted -> ``processing`` (unless a webhook already moved it on);
       a definitive rejection -> ``failed``, which releases the hold;
       a timeout, conflict or unavailable provider leave the payout
       ``created``, to be retried with the same key.

    Two workers submitting one payout at once: the second finds the first
    attempt in flight and sends nothing.
    """
    payout, withdrawal, attempt, skipped = _submit_claim(payout_id, actor)
    if attempt is None:
        log.info("payout.submit_skipped", payout_id=payout_id, reason=skipped)
        return PayoutSubmission(payout=payout, attempt=None, skipped=skipped)

    started = time.monotonic()
    answer: ProviderObject | None = None
    error: ProviderError | None = None
    try:
        answer = _create_at_provider(payout, withdrawal)
    except ProviderError as exc:
        error = exc
    duration_ms = int((time.monotonic() - started) * 1000)

    return _submit_record(
        payout_id=payout.pk,
        attempt_id=attempt.pk,
        answer=answer,
        error=error,
        duration_ms=duration_ms,
        via=via,
        actor=actor,
    )


def _create_at_provider(payout: Payout, withdrawal: Withdrawal) -> ProviderObject:
    # Always the same parameters with the same key: anything else would be
    # refused by the provider as a reused key.
    return provider_client(payout.provider).create_payout(
        idempotency_key=payout.idempotency_key,
        reference=str(payout.reference),
        amount=payout.amount,
        currency=payout.currency,
        destination_label=withdrawal.destination_label,
    )


@transaction.atomic
def _submit_claim(payout_id: int, actor):
    payout = lock(Payout, payout_id)
    withdrawal = Withdrawal.objects.get(pk=payout.withdrawal_id)
    if payout.state != PayoutState.CREATED:
        return payout, withdrawal, None, f"payout is {payout.state}"

    last = payout.attempts.order_by("-number").first()
    if last is not None and last.outcome == PayoutAttempt.Outcome.IN_FLIGHT:
        if last.started_at > timezone.now() - _attempt_lease():
            return payout, withdrawal, None, f"attempt {last.number} is in flight"
        last.outcome = PayoutAttempt.Outcome.ERROR
        last.error = "abandoned: no outcome was recorded"
        last.finished_at = timezone.now()
        last.save(update_fields=["outcome", "error", "finished_at"])

    payout.attempt_count += 1
    payout._change_reason = f"submission attempt {payout.attempt_count}"
    payout.save(update_fields=["attempt_count"])
    attempt = PayoutAttempt.objects.create(
        payout=payout, number=payout.attempt_count, triggered_by=actor
    )
    return payout, withdrawal, attempt, ""


_OUTCOME_OF_ERROR = {
    ProviderTimeout: PayoutAttempt.Outcome.TIMEOUT,
    ProviderConflict: PayoutAttempt.Outcome.CONFLICT,
    ProviderRejected: PayoutAttempt.Outcome.REJECTED,
}


@transaction.atomic
def _submit_record(
    *,
    payout_id: int,
    attempt_id: int,
    answer: ProviderObject | None,
    error: ProviderError | None,
    duration_ms: int,
    via: str,
    actor,
) -> PayoutSubmission:
    payout = lock(Payout, payout_id)
    attempt = PayoutAttempt.objects.select_for_update().get(pk=attempt_id)
    attempt.finished_at = timezone.now()
    attempt.duration_ms = duration_ms

    if answer is not None:
        try:
            _check_answer(payout, answer)
        except Mismatch as exc:
            # Not ours to apply; an operator has to look at the provider.
            log.error("payout.answer_mismatch", payout_id=payout.pk, error=str(exc))
            error = ProviderError(str(exc), http_status=answer.http_status)
        else:
            attempt.outcome = PayoutAttempt.Outcome.ACCEPTED
            attempt.http_status = answer.http_status
            attempt.save()
            payout = _catch_up(payout, answer, via=via, actor=actor)
            log.info(
                "payout.submitted",
                payout_id=payout.pk,
                attempt=attempt.number,
                provider_reference=answer.provider_reference,
                state=payout.state,
            )
            return PayoutSubmission(payout=payout, attempt=attempt)

    assert error is not None
    attempt.outcome = next(
        (o for kind, o in _OUTCOME_OF_ERROR.items() if isinstance(error, kind)),
        PayoutAttempt.Outcome.ERROR,
    )
    attempt.http_status = error.http_status
    attempt.error = str(error)[:500]
    attempt.save()
    log.warning(
        "payout.submit_failed",
        payout_id=payout.pk,
        attempt=attempt.number,
        outcome=attempt.outcome,
        http_status=error.http_status,
        error=str(error),
    )

    if isinstance(error, ProviderRejected):
        reason = f"provider rejected the payout: {error}"
        # A webhook cannot have moved it: the provider created nothing.
        if payout.state == PayoutState.CREATED:
            payout = payout_fail(
                payout_id=payout.pk, via=via, reason=reason, actor=actor
            )
        return PayoutSubmission(payout=payout, attempt=attempt)

    payout.last_error = attempt.error
    payout._change_reason = f"attempt {attempt.number}: {attempt.outcome}"
    payout.save(update_fields=["last_error"])
    return PayoutSubmission(payout=payout, attempt=attempt, retryable=error.retryable)


def _check_answer(payout: Payout, answer: ProviderObject) -> None:
    """Refuse a provider answer that describes some other payout."""
    if (answer.amount, answer.currency) != (payout.amount, payout.currency):
        raise Mismatch(
            f"provider says {answer.amount} {answer.currency}, payout {payout.pk} "
            f"is {payout.amount} {payout.currency}"
        )
    if answer.reference and answer.reference != str(payout.reference):
        raise Mismatch(f"provider answered for reference {answer.reference}")
    if payout.provider_reference not in (None, answer.provider_reference):
        raise Mismatch(
            f"provider reference {answer.provider_reference}, payout {payout.pk} "
            f"has {payout.provider_reference}"
        )


def _catch_up(payout: Payout, answer: ProviderObject, *, via: str, actor) -> Payout:
    """Move a locked payout to the state the provider reports, if it is behind.

    Runs inside the caller's transaction. A report that the payout is
    already past (a replayed "processing" after the paid webhook) changes
    nothing.
    """
    reference = answer.provider_reference
    status = answer.status
    if payout.state == PayoutState.CREATED and status in ("pending", "processing"):
        return payout_accept(payout_id=payout.pk, provider_reference=reference, via=via)
    if payout.state in (PayoutState.CREATED, PayoutState.PROCESSING):
        if status in ("paid", "returned"):
            payout = payout_pay(
                payout_id=payout.pk,
                via=via,
                reason="provider reports the payout paid",
                provider_reference=reference,
                actor=actor,
            )
        elif status == "failed":
            if payout.provider_reference is None:
                payout_accept(
                    payout_id=payout.pk, provider_reference=reference, via=via
                )
            return payout_fail(
                payout_id=payout.pk,
                via=via,
                reason=f"provider reports the payout failed: {answer.failure_code}",
                actor=actor,
            )
    if payout.state == PayoutState.PAID and status == "returned":
        return payout_return(
            payout_id=payout.pk,
            via=via,
            reason="provider reports the payout returned",
            actor=actor,
        )
    if status not in ("pending", "processing", "paid", "failed", "returned"):
        log.warning(
            "payout.unknown_provider_status", payout_id=payout.pk, status=status
        )
    return payout


def payout_poll(*, payout_id: int, via: str = "poll", actor=None) -> Payout:
    """Ask the provider where a payout stands and catch up with its answer.

    For payouts whose webhook never came. A payout still ``created`` is
    submitted again instead: with the same idempotency key that asks, it
    does not pay twice. Provider errors propagate to the caller (the poll
    task retries the retryable ones).
    """
    payout = Payout.objects.select_related("withdrawal").get(pk=payout_id)
    if payout.state == PayoutState.CREATED:
        return payout_submit(payout_id=payout_id, via=via, actor=actor).payout
    if payout.state != PayoutState.PROCESSING:
        return payout

    client = provider_client(payout.provider)
    reference = payout.provider_reference
    if not reference:
        # Accepted by a webhook that named it only by our reference: the
        # create call, replayed with its key, tells us the provider's id.
        reference = _create_at_provider(payout, payout.withdrawal).provider_reference
    answer = client.get_payout(reference)
    with transaction.atomic():
        payout = lock(Payout, payout_id)
        _check_answer(payout, answer)
        before = payout.state
        payout = _catch_up(payout, answer, via=via, actor=actor)
    log.info(
        "payout.polled",
        payout_id=payout.pk,
        provider_status=answer.status,
        state_before=before,
        state=payout.state,
    )
    return payout


def payout_ensure(*, withdrawal_id: int, via: str, actor=None) -> Payout | None:
    """The payout of a withdrawal, created if it has none yet.

    None when the withdrawal can no longer be paid out (it was cancelled or
    failed meanwhile). Safe to call twice and concurrently: ``payout_create``
    locks the withdrawal and only a ``requested`` one gets a payout, so the
    loser of a race finds the winner's payout.
    """
    existing = Payout.objects.filter(withdrawal_id=withdrawal_id).first()
    if existing is not None:
        return existing
    try:
        return payout_create(withdrawal_id=withdrawal_id, via=via, actor=actor)
    except IllegalTransition:
        return Payout.objects.filter(withdrawal_id=withdrawal_id).first()


def payout_sweep() -> dict[str, int]:
    """Queue what a lost task or a missing webhook left behind.

    The ``payout_sweep`` job (finance/jobs.py) runs it every minute:

    - withdrawals still ``requested`` a few minutes after their request:
      their start task was lost (broker down at commit, worker died);
    - payouts still ``created`` whose retries ran out or whose task was
      lost, until ``PAYOUT_MAX_ATTEMPTS`` attempts; after that only an
      operator decides;
    - payouts ``processing`` for longer than ``PAYOUT_POLL_AFTER_MINUTES``,
      polled at most once per that period each.

    Each query reads the (state, state_changed_at) index of its table and
    takes at most ``PAYOUT_SWEEP_BATCH`` rows, oldest first.
    """
    # Imported here because the tasks import these services.
    from finance.tasks import poll_payout, start_payout, submit_payout

    now = timezone.now()
    batch = settings.PAYOUT_SWEEP_BATCH
    grace = timedelta(minutes=settings.PAYOUT_SWEEP_GRACE_MINUTES)
    poll_after = timedelta(minutes=settings.PAYOUT_POLL_AFTER_MINUTES)
    counts = {"started": 0, "submitted": 0, "polled": 0}

    unstarted = (
        Withdrawal.objects.filter(
            state=WithdrawalState.REQUESTED, state_changed_at__lt=now - grace
        )
        .order_by("state_changed_at")
        .values_list("pk", flat=True)[:batch]
    )
    for withdrawal_id in unstarted:
        start_payout.delay(withdrawal_id)
        counts["started"] += 1

    unsent = (
        Payout.objects.filter(
            state=PayoutState.CREATED,
            state_changed_at__lt=now - grace,
            attempt_count__lt=settings.PAYOUT_MAX_ATTEMPTS,
        )
        .order_by("state_changed_at")
        .values_list("pk", flat=True)[:batch]
    )
    for payout_id in unsent:
        # The payout's own task may still be retrying it; the claim in
        # payout_submit keeps the two from sending at once, and the throttle
        # keeps the sweep from adding more than one attempt per period.
        if _once_per(f"payout-sweep:submit:{payout_id}", grace):
            submit_payout.delay(payout_id)
            counts["submitted"] += 1

    silent = (
        Payout.objects.filter(
            state=PayoutState.PROCESSING, state_changed_at__lt=now - poll_after
        )
        .order_by("state_changed_at")
        .values_list("pk", flat=True)[:batch]
    )
    for payout_id in silent:
        if _once_per(f"payout-sweep:poll:{payout_id}", poll_after):
            poll_payout.delay(payout_id)
            counts["polled"] += 1

    log.info("payout.sweep", **counts)
    return counts


def _once_per(key: str, period: timedelta) -> bool:
    # cache.add is atomic in Redis: true for one caller per period, however
    # many sweeps overlap.
    return cache.add(key, 1, timeout=int(period.total_seconds()))
