"""The audit log's hash chain, verified every day (see jobs/registry.py).

``verify_audit_chain`` proves the chain holds, but only when someone runs
it, and a chain cut short at its newest entries still holds. This job runs
the same walk every day, fails (and pages) when the chain breaks, and
anchors the head: each run keeps the newest entry's id and hash in its run
counts and in a log line, which leaves this database with the logs. The
next run fails if that entry is gone or no longer carries that hash, so
entries removed from the end, or a chain rewritten past the anchor, are
noticed within a day.
"""

from datetime import timedelta

import structlog

from jobs.models import JobRun
from jobs.registry import job_register
from security.audit import audit_chain_verify
from security.models import AuditEntry

JOB = "verify_audit_chain"
log = structlog.get_logger(__name__)


class AuditChainBroken(Exception):
    pass


def _last_anchor() -> dict | None:
    return (
        JobRun.objects.filter(
            job=JOB, outcome=JobRun.Outcome.SUCCESS, counts__has_key="head_id"
        )
        .exclude(counts__head_id=None)
        .values_list("counts", flat=True)
        .first()
    )


def audit_chain_check() -> dict:
    report = audit_chain_verify()
    if not report.intact:
        raise AuditChainBroken(
            f"audit chain broken at entry {report.broken_entry_id}: "
            f"{report.problem} ({report.checked} entries before it hold)"
        )
    anchor = _last_anchor()
    if (
        anchor
        and not AuditEntry.objects.filter(
            pk=anchor["head_id"], entry_hash=anchor["head_hash"]
        ).exists()
    ):
        raise AuditChainBroken(
            f"audit entry {anchor['head_id']}, the head when the chain was last "
            f"verified (hash {anchor['head_hash']}), is gone or changed: entries "
            "were removed or rewritten since"
        )
    head_id = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first()
    log.info(
        "audit.chain_verified",
        entries=report.checked,
        head_id=head_id,
        head_hash=report.head_hash,
    )
    return {
        "entries": report.checked,
        "head_id": head_id,
        "head_hash": report.head_hash,
    }


job_register(
    name=JOB,
    func="security.jobs.audit_chain_check",
    description="Walks the audit log's hash chain and checks the last run's head "
    "is still there; pages when either fails.",
    period=timedelta(days=1),
    grace=timedelta(hours=6),
    max_run_time=timedelta(minutes=30),
    severity="critical",
)
