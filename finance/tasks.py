"""Celery tasks that move payouts forward without a person.

Each takes ids, calls one service and is safe to run twice: the services
claim their work under a row lock and the provider deduplicates by the
payout's idempotency key. Transient provider trouble (timeout, conflict,
5xx) is retried with exponential backoff; what is left after the last retry
is picked up by ``sweep_payouts`` or shown to operators as stuck.
"""

import random
from datetime import timedelta

import structlog
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from finance.models import Payout, Withdrawal
from finance.provider import ProviderError
from finance.services.payouts import (
    PayoutSubmission,
    payout_ensure,
    payout_poll,
    payout_submit,
)
from finance.states import PayoutState, WithdrawalState

log = structlog.get_logger(__name__)

MAX_RETRIES = 8


def _backoff(retries: int) -> float:
    # 15 s, 30 s, 1 min ... capped at 30 min, with jitter so a provider
    # outage does not end in every payout retrying in the same second.
    delay = min(15 * 2**retries, 30 * 60)
    return delay * random.uniform(0.8, 1.2)


def _retry_if_transient(task, submission: PayoutSubmission) -> None:
    if not submission.retryable:
        return
    if task.request.retries >= MAX_RETRIES:
        log.error(
            "payout.submit_gave_up",
            payout_id=submission.payout.pk,
            attempts=submission.payout.attempt_count,
        )
        return
    raise task.retry(countdown=_backoff(task.request.retries))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def start_payout(self, withdrawal_id: int) -> None:
    """Create the payout of a committed withdrawal and submit it."""
    payout = payout_ensure(withdrawal_id=withdrawal_id, via="system")
    if payout is None:
        log.info("payout.not_started", withdrawal_id=withdrawal_id)
        return
    submission = payout_submit(payout_id=payout.pk, via="system")
    _retry_if_transient(self, submission)


@shared_task(bind=True, max_retries=MAX_RETRIES)
def submit_payout(self, payout_id: int) -> None:
    submission = payout_submit(payout_id=payout_id, via="system")
    _retry_if_transient(self, submission)


@shared_task(bind=True, max_retries=MAX_RETRIES)
def poll_payout(self, payout_id: int) -> None:
    """Catch up with the provider on a payout whose webhook never came."""
    try:
        payout_poll(payout_id=payout_id, via="poll")
    except ProviderError as exc:
        if not exc.retryable or self.request.retries >= MAX_RETRIES:
            log.error("payout.poll_failed", payout_id=payout_id, error=str(exc))
            return
        raise self.retry(countdown=_backoff(self.request.retries)) from None


@shared_task
def sweep_payouts() -> dict[str, int]:
    """Queue what a lost task or a missing webhook left behind.

    - withdrawals still ``requested`` a few minutes after their request:
      their start task was lost (broker down at commit, worker died);
    - payouts still ``created`` whose retries ran out or whose task was lost,
      up to ``PAYOUT_MAX_ATTEMPTS`` attempts; after that only an operator
      decides;
    - payouts ``processing`` for longer than ``PAYOUT_POLL_AFTER_MINUTES``:
      polled at most once per that period each.

    Each query reads the (state, state_changed_at) index of its table and
    takes at most ``PAYOUT_SWEEP_BATCH`` rows, oldest first.
    """
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
        # keeps the sweep from adding an attempt more than once per period.
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
