"""Reading the team's Markdown register into the waiver register."""

import getpass
from dataclasses import dataclass, field

import structlog
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from security.audit import audit_record
from waivers.markdown import LineError, ParsedRegister
from waivers.models import Waiver, WaiverStatus
from waivers.services.register import waiver_create, waiver_update

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ImportLine:
    line: int
    reference: str
    message: str

    def __str__(self):
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.reference} {self.message}"


@dataclass
class ImportReport:
    errors: list[LineError] = field(default_factory=list)
    created: list[ImportLine] = field(default_factory=list)
    updated: list[ImportLine] = field(default_factory=list)
    unchanged: list[ImportLine] = field(default_factory=list)
    notices: list[ImportLine] = field(default_factory=list)
    applied: bool = False
    # (row, owner, planned changes) for apply
    _plan: list = field(default_factory=list, repr=False)


def _user(text: str):
    """The one user whose username or e-mail is ``text``; None otherwise."""
    users = list(
        get_user_model().objects.filter(
            Q(username__iexact=text) | Q(email__iexact=text)
        )
    )
    return users[0] if len(users) == 1 else None


def register_import(
    *, register: ParsedRegister, apply: bool, source: str, actor=None
) -> ImportReport:
    """Match the register to the file, by ID; write only with ``apply`` and no errors.

    New IDs become waivers, and changed columns of open waivers are updated
    (an approved one then needs approval again). Status and approver are
    never taken from the file: approving and closing are done in the admin
    with a second factor, so a difference is reported, not applied, and a
    new row marked approved arrives awaiting approval. A file with any
    unreadable line writes nothing. Importing the same file twice changes
    nothing the second time.
    """
    report = ImportReport(errors=list(register.errors))
    in_file = set()
    for row in register.rows:
        in_file.add(row.reference)
        _plan_row(row, report)
    for waiver in Waiver.objects.open().exclude(reference__in=in_file):
        report.notices.append(
            ImportLine(0, waiver.reference, "is open here but not in the file: kept")
        )
    report.errors.sort(key=lambda error: error.line)
    if not apply or report.errors:
        return report

    who = getpass.getuser()
    reason = f"imported from {source} by {who}"[:500]
    with transaction.atomic():
        for row, owner, existing, changes in report._plan:
            if existing is None:
                waiver_create(
                    actor=actor,
                    reference=row.reference,
                    owner=owner,
                    status=row.status
                    if row.status != WaiverStatus.APPROVED
                    else WaiverStatus.REQUESTED,
                    reason=reason,
                    **{
                        name: value
                        for name, value in row.fields.items()
                        if name != "owner"
                    },
                )
            elif changes:
                waiver_update(
                    waiver_id=existing.pk, actor=actor, changes=changes, reason=reason
                )
        audit_record(
            actor=actor,
            action="waiver.register_imported",
            after={
                "source": source,
                "created": [line.reference for line in report.created],
                "updated": [line.reference for line in report.updated],
            },
            reason=reason,
        )
    report.applied = True
    log.info(
        "waiver.register_imported",
        created=len(report.created),
        updated=len(report.updated),
    )
    return report


def _plan_row(row, report: ImportReport) -> None:
    owner = _user(row.fields["owner"])
    if owner is None:
        report.errors.append(
            LineError(
                row.line, f"Owner {row.fields['owner']!r} is not exactly one user"
            )
        )
    approver = _user(row.approver) if row.approver else None
    if row.approver and approver is None:
        report.errors.append(
            LineError(row.line, f"Approver {row.approver!r} is not exactly one user")
        )
    if owner is not None and approver is not None and owner == approver:
        report.errors.append(
            LineError(row.line, "the owner is also the approver, which is not allowed")
        )
    if owner is None or (row.approver and approver is None):
        return

    existing = Waiver.objects.filter(reference=row.reference).first()
    wanted = {**row.fields, "owner": owner}
    if existing is None:
        report.created.append(ImportLine(row.line, row.reference, "is new"))
        if row.status == WaiverStatus.APPROVED:
            report.notices.append(
                ImportLine(
                    row.line,
                    row.reference,
                    "is approved in the file; it arrives awaiting approval: "
                    "approve it in the admin",
                )
            )
        report._plan.append((row, owner, None, {}))
        return

    changes = {
        name: value
        for name, value in wanted.items()
        if getattr(existing, name) != value
    }
    if changes and not existing.is_open:
        report.notices.append(
            ImportLine(
                row.line,
                row.reference,
                f"is {existing.status} here; the file's changes to "
                f"{', '.join(changes)} are not applied",
            )
        )
        changes = {}
    if changes:
        withdrawn = existing.status == WaiverStatus.APPROVED
        report.updated.append(
            ImportLine(
                row.line,
                row.reference,
                f"changes {', '.join(changes)}"
                + ("; its approval is withdrawn" if withdrawn else ""),
            )
        )
    else:
        report.unchanged.append(ImportLine(row.line, row.reference, "is unchanged"))
    if row.status != existing.status:
        report.notices.append(
            ImportLine(
                row.line,
                row.reference,
                f"is {row.status} in the file and {existing.status} here: "
                "change the status in the admin",
            )
        )
    elif (
        existing.status == WaiverStatus.APPROVED
        and approver is not None
        and approver != existing.approved_by
    ):
        report.notices.append(
            ImportLine(
                row.line,
                row.reference,
                f"names approver {approver} but was approved by "
                f"{existing.approved_by}: the register's approval stands",
            )
        )
    report._plan.append((row, owner, existing, changes))
