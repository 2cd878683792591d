"""Celery tasks that move payouts forward without a person.

Each takes ids, calls one service and is safe to run twice: the services
claim their work under a row lock and the provider deduplicates by the
payout's idempotency key. Transient provider trouble (timeout, conflict,
5xx) is retried with exponential backoff; what is left after the last retry
is picked up by the ``payout_sweep`` job (finance/jobs.py) or shown to
operators as stuck.
"""

import random

import structlog
from celery import shared_task

from finance.provider import ProviderError
from finance.services.payouts import (
    PayoutSubmission,
    payout_ensure,
    payout_poll,
    payout_submit,
)

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
