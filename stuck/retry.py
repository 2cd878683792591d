"""Safe Retry: one operator asks the provider again about a stuck payout.

It goes through the payout services that normal processing uses, so it can
only repeat what would have happened anyway, and one person may do it
(docs/runbook.md, "Fixing a stuck finance state", step 1):

- a withdrawal still ``requested`` (its payout was never created): create
  the payout and submit it;
- a payout never accepted (``created``): submit it again, with its own
  idempotency key, so the provider moves the money at most once however
  often it is sent;
- a payout ``processing``: ask the provider where it stands and catch up
  with its answer through the state machine.

Two retries of one payout at once send one request: the second finds the
first attempt in flight and sends nothing. Anything else is refused with
the reason: a final state, or the provider's answer about another payout,
needs an override (two people); deposits and webhooks are re-sent by the
provider. Every retry, whatever came of it, is an activity on the case and
an entry in the audit log.
"""

from dataclasses import dataclass

import structlog
from django.db import transaction

from finance.errors import Mismatch
from finance.models import Payout
from finance.provider import ProviderError
from finance.services.payouts import payout_ensure, payout_poll, payout_submit
from finance.states import PayoutState
from security.audit import audit_record
from stuck.models import ItemKind, StuckCase
from stuck.services import stuck_case_record_retry

log = structlog.get_logger(__name__)

VIA = "safe_retry"


class RetryRefused(Exception):
    """The case is not one a retry can help; nothing was sent or changed."""


@dataclass(frozen=True)
class RetryOutcome:
    case: StuckCase
    payout: Payout
    state_before: str
    result: str  # one line for the operator, kept on the case

    @property
    def moved(self) -> bool:
        return self.payout.state != self.state_before


def _payout_of(case: StuckCase, actor) -> Payout:
    if case.closed_at is not None:
        raise RetryRefused(f"case {case.pk} is closed: its item moved on")
    if case.item_kind == ItemKind.PAYOUT:
        return Payout.objects.get(pk=case.item_id)
    if case.item_kind == ItemKind.WITHDRAWAL:
        payout = payout_ensure(withdrawal_id=case.item_id, via=VIA, actor=actor)
        if payout is None:
            raise RetryRefused(
                f"withdrawal {case.item_id} can no longer be paid out (cancelled "
                "or failed meanwhile)"
            )
        return payout
    raise RetryRefused(
        f"a {case.get_item_kind_display()} is not retried from here: the "
        "provider re-sends it; ask the provider, or fix it with an override"
    )


def stuck_case_safe_retry(*, case: StuckCase, actor, request=None) -> RetryOutcome:
    """Resubmit or poll the payout behind ``case``; return what came of it."""
    payout = _payout_of(case, actor)
    before = payout.state
    if before not in (PayoutState.CREATED, PayoutState.PROCESSING):
        raise RetryRefused(
            f"payout {payout.pk} is {before}: the provider has given its final "
            "answer; a correction is an override"
        )

    try:
        if before == PayoutState.CREATED:
            submission = payout_submit(payout_id=payout.pk, via=VIA, actor=actor)
            payout = submission.payout
            if submission.attempt is None:
                result = f"nothing sent: {submission.skipped}"
            else:
                attempt = submission.attempt
                # The provider's own words stay on the attempt, shown only
                # to those who may read them (opsadmin.logging.redacted).
                result = f"resubmitted: attempt {attempt.number} {attempt.outcome}"
        else:
            payout = payout_poll(payout_id=payout.pk, via=VIA, actor=actor)
            result = "asked the provider"
    except ProviderError as exc:
        payout.refresh_from_db()
        result = (
            f"the provider did not answer ({type(exc).__name__}, "
            f"HTTP {exc.http_status or '-'}); try again later"
        )
    except Mismatch as exc:
        payout.refresh_from_db()
        log.error("stuck.safe_retry_mismatch", payout_id=payout.pk, error=str(exc))
        result = "the provider answered about another payout: a person must look"
    result = f"{result}; payout {payout.pk} {before} -> {payout.state}"

    with transaction.atomic():
        stuck_case_record_retry(case=case, actor=actor, text=result)
        audit_record(
            actor=actor,
            action="payout.safe_retry",
            target=payout,
            before={"state": before},
            after={"state": payout.state},
            request=request,
            reason=f"stuck case {case.pk}: {result}",
        )
    log.info(
        "stuck.safe_retry",
        case_id=case.pk,
        payout_id=payout.pk,
        state_before=before,
        state=payout.state,
    )
    return RetryOutcome(case=case, payout=payout, state_before=before, result=result)
