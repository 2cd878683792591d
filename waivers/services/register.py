"""The waiver register's writes: create, change, approve, reject, close.

Every change of a waiver is kept in its history and in the audit log
(``security.audit.audit_record``), in the transaction that makes it.
Approving, rejecting and closing need a second factor verified in the last
few minutes: the admin asks for it (``security.stepup``) and these functions
check it again, so no other entry point can skip it. Approval is by someone
other than the owner, which the database enforces too.

A change of substance (item, risk, owner, deadline, justification,
compensating control) to an approved waiver withdraws the approval: what
was approved is no longer what stands.
"""

from dataclasses import dataclass

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from security.audit import audit_record
from security.stepup import step_up_is_fresh
from waivers.inventory import secret_spec
from waivers.models import Waiver, WaiverStatus

log = structlog.get_logger(__name__)

MATERIAL_FIELDS = (
    "item",
    "secret",
    "risk",
    "owner",
    "deadline",
    "justification",
    "compensating_control",
)


class WaiverError(Exception):
    """A rule of the register refused the change; the message says which."""


def _snapshot(waiver: Waiver, names=None) -> dict:
    names = names or (*MATERIAL_FIELDS, "status", "approved_by", "approved_at")
    values = {}
    for name in names:
        value = getattr(waiver, name)
        if name in ("owner", "approved_by"):
            value = value.get_username() if value else None
        values[name] = value
    return values


def _save(waiver: Waiver, *, actor, reason: str) -> None:
    # simple-history takes the user from the request middleware in the admin;
    # commands and tasks name it here.
    if actor is not None and getattr(actor, "is_authenticated", False):
        waiver._history_user = actor  # type: ignore[attr-defined]
    waiver._change_reason = reason[:100]  # type: ignore[attr-defined]
    waiver.save()


def _validate(waiver: Waiver) -> None:
    try:
        waiver.full_clean(exclude=["owner", "approved_by", "ended_by"])
    except ValidationError as exc:
        raise WaiverError("; ".join(exc.messages)) from None


def _require_step_up(request) -> None:
    if request is None or not step_up_is_fresh(request):
        raise WaiverError(
            "this needs a second factor verified in the last "
            f"{settings.STEP_UP_MAX_AGE_SECONDS // 60} minutes"
        )


def _require_permission(actor, permission: str) -> None:
    if actor is None or not actor.has_perm(permission):
        raise WaiverError(f"{actor} lacks the permission {permission}")


def _check_secret(name: str) -> None:
    if name and secret_spec(name) is None:
        raise WaiverError(f"{name} is not a secret of the inventory")


def waiver_next_reference() -> str:
    numbers = [
        int(reference[2:])
        for reference in Waiver.objects.filter(reference__regex=r"^W-[0-9]+$")
        .values_list("reference", flat=True)
        .iterator()
    ]
    return f"W-{max(numbers, default=0) + 1:03d}"


@transaction.atomic
def waiver_create(
    *,
    actor,
    item: str,
    risk: str,
    owner,
    deadline,
    justification: str = "",
    compensating_control: str = "",
    secret: str = "",
    reference: str = "",
    status: str = WaiverStatus.REQUESTED,
    request=None,
    reason: str = "",
) -> Waiver:
    """Record a new waiver, awaiting approval.

    ``status`` may also be closed or rejected, for the past entries of an
    imported register; a waiver is never created approved.
    """
    if status == WaiverStatus.APPROVED:
        raise WaiverError("a waiver is approved in the admin, never created approved")
    _check_secret(secret)
    waiver = Waiver(
        reference=reference or waiver_next_reference(),
        item=item or secret,
        secret=secret,
        risk=risk,
        owner=owner,
        deadline=deadline,
        justification=justification,
        compensating_control=compensating_control,
        status=status,
    )
    if status != WaiverStatus.REQUESTED:
        waiver.ended_at = timezone.now()
    _validate(waiver)
    _save(waiver, actor=actor, reason=reason or "created")
    audit_record(
        actor=actor,
        action="waiver.created",
        target=waiver,
        after=_snapshot(waiver),
        request=request,
        reason=reason,
    )
    log.info("waiver.created", reference=waiver.reference, risk=waiver.risk)
    return waiver


@dataclass(frozen=True)
class WaiverChange:
    waiver: Waiver
    changed: list[str]
    approval_withdrawn: bool


@transaction.atomic
def waiver_update(
    *, waiver_id: int, actor, changes: dict, request=None, reason: str = ""
) -> WaiverChange:
    """Change the fields in ``changes``; an approved waiver goes back to approval."""
    unknown = set(changes) - set(MATERIAL_FIELDS)
    if unknown:
        raise WaiverError(f"not changed this way: {', '.join(sorted(unknown))}")
    waiver = Waiver.objects.select_for_update().get(pk=waiver_id)
    changed = [
        name for name, value in changes.items() if getattr(waiver, name) != value
    ]
    if not changed:
        return WaiverChange(waiver, [], False)
    if not waiver.is_open:
        raise WaiverError(f"{waiver.reference} is {waiver.status}: open a new waiver")
    _check_secret(changes.get("secret", waiver.secret))

    before = _snapshot(waiver, [*changed, "status"])
    for name in changed:
        setattr(waiver, name, changes[name])
    withdrawn = waiver.status == WaiverStatus.APPROVED
    if withdrawn:
        waiver.status = WaiverStatus.REQUESTED
        waiver.approved_by = None
        waiver.approved_at = None
    _validate(waiver)
    _save(waiver, actor=actor, reason=reason or "changed")
    audit_record(
        actor=actor,
        action="waiver.changed",
        target=waiver,
        before=before,
        after=_snapshot(waiver, [*changed, "status"]),
        request=request,
        reason=reason,
    )
    if withdrawn:
        log.info("waiver.approval_withdrawn", reference=waiver.reference)
    return WaiverChange(waiver, changed, withdrawn)


@transaction.atomic
def waiver_approve(*, waiver_id: int, actor, request, reason: str = "") -> Waiver:
    """Approve a waiver awaiting approval: not its owner, with a fresh second factor."""
    _require_step_up(request)
    _require_permission(actor, "waivers.approve_waiver")
    waiver = Waiver.objects.select_for_update().get(pk=waiver_id)
    if waiver.status != WaiverStatus.REQUESTED:
        raise WaiverError(f"{waiver.reference} is {waiver.get_status_display()}")
    if waiver.owner_id == actor.pk:
        raise WaiverError("the owner of a waiver cannot approve it")
    if not waiver.justification.strip() or not waiver.compensating_control.strip():
        raise WaiverError("a justification and a compensating control come first")
    if waiver.deadline < timezone.localdate():
        raise WaiverError(f"its deadline {waiver.deadline} has passed")

    before = _snapshot(waiver, ["status"])
    waiver.status = WaiverStatus.APPROVED
    waiver.approved_by = actor
    waiver.approved_at = timezone.now()
    _save(waiver, actor=actor, reason=reason or "approved")
    audit_record(
        actor=actor,
        action="waiver.approved",
        target=waiver,
        before=before,
        after=_snapshot(waiver, ["status", "risk", "deadline", "approved_by"]),
        request=request,
        reason=reason,
    )
    log.info("waiver.approved", reference=waiver.reference, approver=actor.pk)
    return waiver


def _end(*, waiver_id, actor, request, reason, status, permission, allowed) -> Waiver:
    _require_step_up(request)
    _require_permission(actor, permission)
    if not reason.strip():
        raise WaiverError("say why")
    waiver = Waiver.objects.select_for_update().get(pk=waiver_id)
    if waiver.status not in allowed:
        raise WaiverError(f"{waiver.reference} is {waiver.get_status_display()}")
    before = _snapshot(waiver, ["status"])
    waiver.status = status
    waiver.ended_by = actor
    waiver.ended_at = timezone.now()
    _save(waiver, actor=actor, reason=reason)
    audit_record(
        actor=actor,
        action=f"waiver.{status}",
        target=waiver,
        before=before,
        after=_snapshot(waiver, ["status"]),
        request=request,
        reason=reason,
    )
    log.info("waiver.ended", reference=waiver.reference, status=status)
    return waiver


@transaction.atomic
def waiver_reject(*, waiver_id: int, actor, request, reason: str) -> Waiver:
    return _end(
        waiver_id=waiver_id,
        actor=actor,
        request=request,
        reason=reason,
        status=WaiverStatus.REJECTED,
        permission="waivers.approve_waiver",
        allowed=(WaiverStatus.REQUESTED,),
    )


@transaction.atomic
def waiver_close(*, waiver_id: int, actor, request, reason: str) -> Waiver:
    """End an open waiver: the gap is fixed, or the waiver is withdrawn."""
    return _end(
        waiver_id=waiver_id,
        actor=actor,
        request=request,
        reason=reason,
        status=WaiverStatus.CLOSED,
        permission="waivers.close_waiver",
        allowed=(WaiverStatus.REQUESTED, WaiverStatus.APPROVED),
    )
