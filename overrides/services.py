"""The two-person workflow of an override request, one service per step.

submit (doer) -> approve (approver, fresh second factor) -> execute (the
approver's same click) -> executed or failed; or reject (approver), withdraw
(doer), expire (the clock). Every rule is checked here, on the server,
whatever the page offered; every step is an audit entry with the acting
user, written in the step's own transaction.

Each step moves ``status`` with a conditional UPDATE (``_claim``) that only
matches the row while it is still in the expected status, so of two people
(or two tabs) acting at once exactly one succeeds; the other gets
AlreadySettled.
"""

from datetime import timedelta

import structlog
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from finance.errors import FinanceError
from finance.states import IllegalTransition
from overrides.actions import action_get, target_get
from overrides.errors import (
    ActionNotApplicable,
    AlreadySettled,
    InvalidParams,
    NotPermitted,
    OverrideError,
    PreviewMismatch,
    RequestExpired,
    StepUpRequired,
    Tampered,
    TargetMovedOn,
)
from overrides.models import OverrideRequest
from overrides.notifications import notify_approvers
from security.audit import audit_record
from security.stepup import step_up_is_fresh

log = structlog.get_logger(__name__)

Status = OverrideRequest.Status

# What a failed execution may raise; anything else is a bug and propagates
# (the transaction rolls back and the request stays approved).
EXECUTION_ERRORS = (
    OverrideError,
    FinanceError,
    IllegalTransition,
    ValueError,
    DatabaseError,
)


# Attempts that break a rule (the wrong person, a forged or stale binding)
# are audited; a missing fresh code is the normal way to the step-up prompt
# and one that lost a race is not an attempt to break anything.
REFUSALS_WORTH_RECORDING = (NotPermitted, Tampered, TargetMovedOn)


def _audit(override, *, actor, step, before=None, after=None, request=None, reason=""):
    audit_record(
        actor=actor,
        action=f"override.{step}",
        target=override,
        before=before,
        after={"target": f"{override.target_kind} {override.target_id}", **after}
        if after is not None
        else None,
        request=request,
        reason=reason,
    )


def _claim(override_id: int, *, source, to: str, also=None, **fields) -> bool:
    """Move the request from one of ``source`` to ``to``; False if it had moved.

    The UPDATE's row lock is held to the end of the caller's transaction: a
    concurrent claim waits for it and then re-reads the committed status.
    """
    matched = OverrideRequest.objects.filter(
        Q(pk=override_id, status__in=source) & (also or Q())
    ).update(status=to, **fields)
    return matched == 1


def _check_hash(override) -> None:
    if override.compute_content_hash() != override.content_hash:
        raise Tampered(f"override {override.pk}: its content no longer matches")


def _refuse_unless(user, permission: str, doing: str) -> None:
    if not user.has_perm(f"overrides.{permission}"):
        raise NotPermitted(f"{user} may not {doing} override requests")


def override_attempt_refused(
    *, override_id: int, actor, step: str, error, request=None
) -> None:
    """Record, in its own transaction, an attempt the rules turned down."""
    override = OverrideRequest.objects.filter(pk=override_id).first()
    if override is None:
        return
    _audit(
        override,
        actor=actor,
        step="refused",
        after={"attempted": step, "status": override.status, "error": str(error)},
        request=request,
    )
    log.warning(
        "override.refused",
        override_id=override_id,
        attempted=step,
        actor=getattr(actor, "pk", None),
        error=type(error).__name__,
    )


# --- submit ------------------------------------------------------------------


def override_request_submit(
    *,
    target_kind: str,
    target_id: int,
    action: str,
    params: dict,
    reason: str,
    ticket_reference: str,
    doer,
    seen_target_version: int | None = None,
    request=None,
) -> OverrideRequest:
    """The doer asks for ``action`` on a target; the approvers are notified.

    ``seen_target_version`` is the version the doer's preview was made for:
    when the target has moved since, nothing is submitted.
    """
    _refuse_unless(doer, "add_overriderequest", "submit")
    chosen = action_get(action)
    if target_kind not in chosen.target_kinds:
        raise ActionNotApplicable(f"{chosen.label} does not apply to a {target_kind}")
    params = chosen.clean_params(params)
    reason, ticket_reference = (reason or "").strip(), (ticket_reference or "").strip()
    missing = {
        name: ["is required"]
        for name, value in (("reason", reason), ("ticket_reference", ticket_reference))
        if not value
    }
    if missing:
        raise InvalidParams(missing)
    if len(ticket_reference) > 100:
        raise InvalidParams({"ticket_reference": ["at most 100 characters"]})

    target = target_get(target_kind, target_id)
    if seen_target_version is not None and target.version != seen_target_version:
        raise TargetMovedOn(
            f"{target_kind} {target_id} changed since you looked "
            f"(version {seen_target_version}, now {target.version})"
        )
    preview = chosen.preview(target, params)
    now = timezone.now()
    override = OverrideRequest(
        target_kind=target_kind,
        target_id=target.pk,
        target_state=target.state,
        target_version=target.version,
        action=chosen.name,
        params=params,
        reason=reason,
        ticket_reference=ticket_reference,
        doer=doer,
        submitted_at=now,
        expires_at=now + timedelta(minutes=settings.OVERRIDE_REQUEST_TTL_MINUTES),
        submitted_preview=preview.as_dict(),
    )
    override.content_hash = override.compute_content_hash()
    try:
        with transaction.atomic():
            override.save()
            _audit(
                override,
                actor=doer,
                step="submitted",
                after={
                    "status": Status.SUBMITTED,
                    "action": override.action,
                    "params": params,
                    "target_state": override.target_state,
                    "target_version": override.target_version,
                    "ticket_reference": ticket_reference,
                    "content_hash": override.content_hash,
                    "expires_at": override.expires_at,
                    "preview": preview.summary,
                },
                request=request,
                reason=reason,
            )
            notify_approvers(override)
    except IntegrityError:
        existing = (
            OverrideRequest.objects.filter(
                target_kind=target_kind,
                target_id=target_id,
                status__in=OverrideRequest.OPEN,
            )
            .values_list("pk", flat=True)
            .first()
        )
        raise AlreadySettled(
            f"{target_kind} {target_id} already has an open override request "
            f"({existing}): approve, reject or withdraw that one first"
        ) from None
    log.info(
        "override.submitted",
        override_id=override.pk,
        action=override.action,
        target_kind=target_kind,
        target_id=target_id,
    )
    return override


# --- seen by an approver -----------------------------------------------------


def override_request_viewed(*, override: OverrideRequest, viewer, request=None):
    """Record that someone who could approve the request has looked at it."""
    if override.status != Status.SUBMITTED or viewer.pk == override.doer_id:
        return
    if not viewer.has_perm("overrides.approve_overriderequest"):
        return
    _audit(
        override,
        actor=viewer,
        step="viewed",
        after={"status": override.status, "content_hash": override.content_hash},
        request=request,
    )


# --- approve and execute -------------------------------------------------------


def override_request_approve(
    *,
    override_id: int,
    approver,
    request,
    content_hash: str,
    target_version: int,
) -> OverrideRequest:
    """The second person approves what they reviewed.

    ``content_hash`` and ``target_version`` are what the approver's page
    showed; the approval is bound to them. Does not execute: the caller
    calls ``override_request_execute`` next (the admin does, in the same
    click).

    1. Check the person: holds the approve permission, is not the doer, and
       proved a second factor within STEP_UP_MAX_AGE_SECONDS.
    2. Check the request: still submitted, not expired, its stored hash
       matches its content and the hash the approver reviewed.
    3. Check the target: its version now is the request's version.
    4. Claim with a conditional UPDATE (status still submitted, not expired,
       approver is not the doer); no row means someone got there first.
    5. Audit and commit.
    """
    try:
        return _approve(
            override_id,
            approver=approver,
            request=request,
            content_hash=content_hash,
            target_version=target_version,
        )
    except REFUSALS_WORTH_RECORDING as exc:
        override_attempt_refused(
            override_id=override_id,
            actor=approver,
            step="approve",
            error=exc,
            request=request,
        )
        raise


def _approve(override_id, *, approver, request, content_hash, target_version):
    _refuse_unless(approver, "approve_overriderequest", "approve")
    override = OverrideRequest.objects.get(pk=override_id)
    if override.doer_id == approver.pk:
        raise NotPermitted("nobody approves their own override request")
    if not step_up_is_fresh(request):
        raise StepUpRequired("approving needs a fresh code from your authenticator")
    if override.status != Status.SUBMITTED:
        raise AlreadySettled(f"override {override.pk} is {override.status}")
    now = timezone.now()
    if override.is_expired(now):
        _expire(override, now=now)
        raise RequestExpired(f"override {override.pk} expired at {override.expires_at}")
    _check_hash(override)
    if (
        content_hash != override.content_hash
        or target_version != override.target_version
    ):
        raise Tampered(
            f"override {override.pk}: what you approved is not what was submitted"
        )
    target = target_get(override.target_kind, override.target_id)
    if target.version != override.target_version:
        raise TargetMovedOn(
            f"{override.target_kind} {override.target_id} has changed since the "
            f"request (version {override.target_version}, now {target.version}, "
            f"{target.state}): reject it and ask for a new one"
        )

    override.approver, override.approved_at = approver, now
    approval_hash = override.compute_approval_hash()
    with transaction.atomic():
        claimed = _claim(
            override.pk,
            source=[Status.SUBMITTED],
            to=Status.APPROVED,
            also=Q(expires_at__gt=now) & ~Q(doer=approver),
            approver=approver,
            approved_at=now,
            approval_hash=approval_hash,
        )
        if not claimed:
            raise AlreadySettled(f"override {override.pk} was settled meanwhile")
        override.status, override.approval_hash = Status.APPROVED, approval_hash
        _audit(
            override,
            actor=approver,
            step="approved",
            before={"status": Status.SUBMITTED},
            after={
                "status": Status.APPROVED,
                "content_hash": override.content_hash,
                "target_version": override.target_version,
                "approval_hash": approval_hash,
            },
            request=request,
        )
    log.info("override.approved", override_id=override.pk, approver=approver.pk)
    return override


def override_request_execute(*, override_id: int, actor, request) -> OverrideRequest:
    """Execute an approved request, once, through the finance services.

    Only its approver executes it, with a fresh second factor.

    1. Claim: a conditional UPDATE moves it from approved to executing. The
       row stays locked until this transaction ends, so a second executor
       waits, then finds it executed (or failed) and is refused; executing
       is never seen outside this transaction.
    2. Check again what the approval is bound to: the content hash, the
       approval hash, the expiry.
    3. Under a savepoint: lock the target row, refuse if its version is not
       the request's, preview again, run the action, and refuse if the
       journal postings written differ from the preview's.
    4. Settle: executed with the result, or failed with the error (the
       savepoint is rolled back, so a failure writes no money); audit it.
    """
    try:
        return _execute_once(override_id, actor=actor, request=request)
    except REFUSALS_WORTH_RECORDING as exc:
        override_attempt_refused(
            override_id=override_id,
            actor=actor,
            step="execute",
            error=exc,
            request=request,
        )
        raise


def _execute_once(override_id, *, actor, request) -> OverrideRequest:
    _refuse_unless(actor, "approve_overriderequest", "execute")
    if not step_up_is_fresh(request):
        raise StepUpRequired("executing needs a fresh code from your authenticator")
    with transaction.atomic():
        claimed = _claim(
            override_id,
            source=[Status.APPROVED],
            to=Status.EXECUTING,
            also=Q(approver=actor),
        )
        if not claimed:
            current = OverrideRequest.objects.get(pk=override_id)
            if current.status == Status.APPROVED:
                raise NotPermitted("only the approver executes an approved request")
            raise AlreadySettled(f"override {override_id} is {current.status}")
        override = OverrideRequest.objects.get(pk=override_id)

        now = timezone.now()
        result: dict | None = None
        error = ""
        try:
            with transaction.atomic():
                result = _execute(override, actor=actor, now=now)
        except EXECUTION_ERRORS as exc:
            error = f"{type(exc).__name__}: {exc}"

        # No result means _execute raised and its savepoint wrote nothing.
        if result is None:
            _claim(
                override.pk,
                source=[Status.EXECUTING],
                to=Status.FAILED,
                executed_at=now,
                execution_error=error[:2000],
            )
            override.status = Status.FAILED
            after = {"status": Status.FAILED, "error": error[:500]}
        else:
            _claim(
                override.pk,
                source=[Status.EXECUTING],
                to=Status.EXECUTED,
                executed_at=now,
                execution_result=result,
            )
            override.status = Status.EXECUTED
            after = {"status": Status.EXECUTED, **result}
        override.executed_at = now
        override.execution_result, override.execution_error = result, error
        _audit(
            override,
            actor=actor,
            step=override.status,
            before={"status": Status.APPROVED},
            after=after,
            request=request,
        )
    log.info(
        "override.executed" if not error else "override.failed",
        override_id=override.pk,
        action=override.action,
        error=error or None,
    )
    return override


def _execute(override: OverrideRequest, *, actor, now) -> dict:
    _check_hash(override)
    if override.approval_hash != override.compute_approval_hash():
        raise Tampered(f"override {override.pk}: the approval no longer matches")
    if override.is_expired(now):
        raise RequestExpired(f"override {override.pk} expired at {override.expires_at}")
    chosen = action_get(override.action)
    target = target_get(override.target_kind, override.target_id, lock=True)
    if target.version != override.target_version:
        raise TargetMovedOn(
            f"{override.target_kind} {override.target_id} moved on "
            f"(version {override.target_version}, now {target.version})"
        )
    preview = chosen.preview(target, override.params, override_id=override.pk)
    ledger_txs = chosen.execute(target, override.params, override=override, actor=actor)

    postings = [
        posting
        for ledger_tx in ledger_txs
        for posting in ledger_tx.postings.select_related("account").order_by("id")
    ]
    written = sorted((posting.account.name, posting.amount) for posting in postings)
    if written != preview.posting_lines():
        raise PreviewMismatch(
            f"override {override.pk}: would write {written}, "
            f"approved {preview.posting_lines()}"
        )
    target.refresh_from_db()
    return {
        "target_state": target.state,
        "target_version": target.version,
        "state_changes": [
            f"{c.kind} {c.id}: {c.from_state} -> {c.to_state}"
            for c in preview.state_changes
        ],
        "ledger_transactions": [
            {"id": tx.pk, "key": tx.idempotency_key, "kind": tx.kind}
            for tx in ledger_txs
        ],
        "postings": [
            {
                "account": posting.account.name,
                "amount": posting.amount,
                "currency": posting.currency,
            }
            for posting in postings
        ],
    }


# --- close without executing -----------------------------------------------


def override_request_reject(
    *, override_id: int, approver, reason: str, request=None
) -> OverrideRequest:
    """An approver turns the request down, with a reason for the doer."""
    _refuse_unless(approver, "reject_overriderequest", "reject")
    override = OverrideRequest.objects.get(pk=override_id)
    if override.doer_id == approver.pk:
        raise NotPermitted("withdraw your own request instead of rejecting it")
    return _close(
        override, by=approver, to=Status.REJECTED, reason=reason, request=request
    )


def override_request_withdraw(
    *, override_id: int, doer, reason: str, request=None
) -> OverrideRequest:
    """The doer takes back their own request before anyone approves it."""
    _refuse_unless(doer, "withdraw_overriderequest", "withdraw")
    override = OverrideRequest.objects.get(pk=override_id)
    if override.doer_id != doer.pk:
        raise NotPermitted("only the doer withdraws a request")
    return _close(
        override, by=doer, to=Status.WITHDRAWN, reason=reason, request=request
    )


def _close(override, *, by, to: str, reason: str, request) -> OverrideRequest:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidParams({"reason": ["is required"]})
    now = timezone.now()
    with transaction.atomic():
        claimed = _claim(
            override.pk,
            source=[Status.SUBMITTED],
            to=to,
            closed_by=by,
            closed_at=now,
            close_reason=reason,
        )
        if not claimed:
            override.refresh_from_db(fields=["status"])
            raise AlreadySettled(f"override {override.pk} is {override.status}")
        override.status = to
        _audit(
            override,
            actor=by,
            step=to,
            before={"status": Status.SUBMITTED},
            after={"status": to},
            request=request,
            reason=reason,
        )
    log.info("override.closed", override_id=override.pk, status=to)
    return override


def _expire(override, *, now) -> bool:
    with transaction.atomic():
        claimed = _claim(
            override.pk,
            source=OverrideRequest.OPEN,
            to=Status.EXPIRED,
            also=Q(expires_at__lte=now),
            closed_at=now,
        )
        if claimed:
            _audit(
                override,
                actor=None,
                step="expired",
                before={"status": override.status},
                after={"status": Status.EXPIRED, "expires_at": override.expires_at},
            )
    return claimed


def override_requests_expire(*, now=None) -> dict[str, int]:
    """Expire every open request past its deadline; safe to run concurrently.

    The scheduled job ``override_requests_expire`` (overrides/jobs.py) runs
    it every minute; the counts it returns are the run's result.
    """
    now = now or timezone.now()
    due = OverrideRequest.objects.filter(
        status__in=OverrideRequest.OPEN, expires_at__lte=now
    ).order_by("expires_at")
    expired = sum(_expire(override, now=now) for override in due)
    if expired:
        log.info("override.expired_batch", count=expired)
    return {"expired": expired}
