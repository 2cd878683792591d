"""Run the deep scan: plan its ranges, share them between workers, resume it.

``deep_reconcile_run`` is the one entry point (command, the weekly job in
reconciliation/jobs.py, admin). It coordinates one scan to the end; helpers started with
``parallel`` (Celery tasks on any machine, or threads in this process) run
``deep_reconcile_help`` and claim ranges beside it. The SQL of each range is
in reconciliation/checks.py; how every range reads the same snapshot is in
reconciliation/snapshots.py.
"""

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from reconciliation.checks import FindingData, plan_ranges, run_check
from reconciliation.models import Check, DeepScan, Finding, ScanRange
from reconciliation.services.tickets import tickets_settle
from reconciliation.snapshots import SnapshotGone, SnapshotReader

log = structlog.get_logger(__name__)

# pg_try_advisory_lock key of the one coordinator ("deep" in ASCII).
SCAN_LOCK_KEY = 0x64656570


class ScanBusy(Exception):
    """Another coordinator holds the scan lock."""


@dataclass(frozen=True)
class ScanResult:
    scan_id: int
    status: str
    complete: bool
    ranges_total: int
    ranges_done: int
    rows_scanned: int
    findings: int
    tickets_opened: int
    tickets_updated: int
    tickets_closed: int

    @property
    def counts(self) -> dict:
        """What the job framework records of a run."""
        return asdict(self)

    @classmethod
    def of(cls, scan: DeepScan) -> "ScanResult":
        return cls(
            scan_id=scan.pk,
            status=scan.status,
            complete=scan.status == DeepScan.Status.DONE,
            ranges_total=scan.ranges_total,
            ranges_done=scan.ranges_done,
            rows_scanned=scan.rows_scanned,
            findings=scan.findings_count,
            tickets_opened=scan.tickets_opened,
            tickets_updated=scan.tickets_updated,
            tickets_closed=scan.tickets_closed,
        )


Progress = Callable[[DeepScan], None]


def deep_reconcile_run(
    *,
    checks: list[str] | None = None,
    ranges: int | None = None,
    range_size: int | None = None,
    parallel: int = 1,
    workers: str = "celery",
    resume: int | None = None,
    settle_tickets: bool = True,
    via: str = "command",
    progress: Progress | None = None,
) -> ScanResult:
    """Run a deep scan (or resume scan ``resume``) to its end; return the counts.

    ``parallel`` is the number of processes scanning at once: this one plus
    ``parallel - 1`` helpers started as Celery tasks (``workers="celery"``,
    any machine with a worker) or as threads here (``workers="threads"``).
    ``settle_tickets`` opens, extends and closes tickets from the findings
    when the scan completes; without it the scan only records findings.
    ``progress`` is called with the scan row after every range and about
    once a second while waiting; an exception it raises (KeyboardInterrupt
    from the terminal) interrupts the scan, which can then be resumed.

    1. Take the scan lock, a session advisory lock on the default database:
       one coordinator at a time, and a dead coordinator's lock ends with
       its connection. Any scan still marked running is then orphaned and
       is marked interrupted.
    2. Open the reader (REPEATABLE READ) and export its snapshot.
    3. A new scan plans its ranges in that snapshot, so every row the
       snapshot holds falls in a range. A resumed scan puts every range not
       done back to pending, including ranges a dead worker was holding.
    4. Store the run number and the snapshot id on the scan, in autocommit:
       helpers read them from there.
    5. Start the helpers; claim and run ranges here too, so the scan
       progresses even when no helper ever starts.
    6. When no range is pending, wait while others finish theirs, keeping
       the snapshot open for them; take back a range whose lease expired.
    7. With every range done: end the snapshot, settle the tickets, mark
       the scan done.
    """
    _require_postgresql()
    checks = list(checks or Check.values)
    unknown = set(checks) - set(Check.values)
    if unknown:
        raise ValueError(f"unknown checks: {', '.join(sorted(unknown))}")

    _lock()
    scan = None
    try:
        DeepScan.objects.filter(status=DeepScan.Status.RUNNING).update(
            status=DeepScan.Status.INTERRUPTED,
            error="its coordinator was gone when the next scan started",
        )
        with SnapshotReader(settings.RECON_DATABASE_ALIAS) as reader:
            reader.begin()
            snapshot_id = reader.export()
            if resume is None:
                scan = _scan_create(
                    reader,
                    checks=checks,
                    ranges=ranges,
                    range_size=range_size,
                    via=via,
                )
            else:
                scan = _scan_reopen(resume)
            scan.runs += 1
            scan.settle_tickets = settle_tickets
            scan.snapshot_id = snapshot_id
            scan.database_alias = reader.alias
            scan.status = DeepScan.Status.RUNNING
            scan.error = ""
            scan.save(
                update_fields=[
                    "runs",
                    "settle_tickets",
                    "snapshot_id",
                    "database_alias",
                    "status",
                    "error",
                ]
            )
            log.info(
                "deep_scan.run_started",
                scan_id=scan.pk,
                run=scan.runs,
                ranges=scan.ranges_total,
                done=scan.ranges_done,
                parallel=parallel,
            )

            _start_helpers(scan, count=parallel - 1, workers=workers)
            worker = _worker_name("coordinator")
            while True:
                _claim_loop(scan, reader, worker=worker, progress=progress)
                if not _wait_for_others(scan, progress=progress):
                    break
        # The snapshot is released here; settling reads the live tables.
        _scan_finish(scan, settle_tickets=settle_tickets)
    except BaseException as exc:
        if scan is not None:
            _scan_interrupt(scan, error=exc)
        raise
    finally:
        _unlock()
    scan.refresh_from_db()
    return ScanResult.of(scan)


def deep_reconcile_help(*, scan_id: int, worker: str = "") -> int:
    """Help a running scan: import its snapshot, claim ranges until none is left.

    Safe to run any number of times, late or twice: a scan that is not
    running, or whose snapshot is gone, is left alone. Returns the number
    of ranges this helper ran.
    """
    worker = worker or _worker_name("helper")
    scan = DeepScan.objects.filter(pk=scan_id).first()
    if scan is None or scan.status != DeepScan.Status.RUNNING:
        return 0
    with SnapshotReader(scan.database_alias) as reader:
        try:
            reader.begin(snapshot_id=scan.snapshot_id)
        except SnapshotGone:
            log.info("deep_scan.helper_too_late", scan_id=scan_id, worker=worker)
            return 0
        return _claim_loop(scan, reader, worker=worker)


# --- the steps -----------------------------------------------------------------


def _require_postgresql() -> None:
    aliases = {"default", settings.RECON_DATABASE_ALIAS}
    if any(connections[alias].vendor != "postgresql" for alias in aliases):
        raise RuntimeError("deep reconciliation needs PostgreSQL (snapshots)")


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SCAN_LOCK_KEY])
        if not cursor.fetchone()[0]:
            raise ScanBusy("another deep scan is running")


def _unlock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [SCAN_LOCK_KEY])


# Unless told otherwise, a range covers at least this many ids: below it,
# claiming and recording a range costs more than its query.
MIN_RANGE_SIZE = 50_000


def _scan_create(reader, *, checks, ranges, range_size, via) -> DeepScan:
    default = not (ranges or range_size)
    planned = plan_ranges(
        reader.cursor(),
        checks=checks,
        ranges=ranges or settings.RECON_SCAN_RANGES,
        range_size=range_size,
        min_range_size=MIN_RANGE_SIZE if default else 1,
    )
    with transaction.atomic():
        scan = DeepScan.objects.create(
            checks=checks,
            via=via,
            database_alias=reader.alias,
            ranges_total=len(planned),
        )
        ScanRange.objects.bulk_create(
            (
                ScanRange(scan=scan, position=n, kind=kind, lo=lo, hi=hi)
                for n, (kind, lo, hi) in enumerate(planned)
            ),
            batch_size=1000,
        )
    return scan


def _scan_reopen(scan_id: int) -> DeepScan:
    scan = DeepScan.objects.get(pk=scan_id)
    if scan.status == DeepScan.Status.DONE:
        raise ValueError(f"deep scan {scan_id} is already done")
    # Our lock proves its coordinator is gone; a helper of the old run may
    # still hold a range, but its claim token no longer counts (see _record).
    ScanRange.objects.filter(scan=scan).exclude(status=ScanRange.Status.DONE).update(
        status=ScanRange.Status.PENDING, claim_token="", claimed_by="", claimed_at=None
    )
    return scan


def _start_helpers(scan: DeepScan, *, count: int, workers: str) -> None:
    if count <= 0:
        return
    if workers == "threads":
        for n in range(count):
            threading.Thread(
                target=_helper_thread,
                args=(scan.pk, _worker_name(f"thread{n + 1}")),
                daemon=True,
            ).start()
        return
    if workers != "celery":
        raise ValueError("workers must be 'celery' or 'threads'")
    from celery import group

    from reconciliation.tasks import deep_reconcile_help_task

    helpers = group(deep_reconcile_help_task.s(scan.pk) for _ in range(count))
    transaction.on_commit(helpers.apply_async)


def _helper_thread(scan_id: int, worker: str) -> None:
    try:
        deep_reconcile_help(scan_id=scan_id, worker=worker)
    except Exception:
        # The coordinator takes the range back when its lease expires.
        log.exception("deep_scan.helper_failed", scan_id=scan_id, worker=worker)
    finally:
        connection.close()


def _claim_loop(scan, reader, *, worker: str, progress=None) -> int:
    ran = 0
    while True:
        claimed = _claim(scan, worker=worker)
        if claimed is None:
            return ran
        scan_range, token = claimed
        started = time.monotonic()
        try:
            result = run_check(
                reader.cursor(),
                check=scan_range.kind,
                lo=scan_range.lo,
                hi=scan_range.hi,
            )
        except BaseException:
            _release(scan_range, token)
            raise
        duration_ms = int((time.monotonic() - started) * 1000)
        if _record(scan, scan_range, token, result, duration_ms=duration_ms):
            ran += 1
            log.info(
                "deep_scan.range_done",
                scan_id=scan.pk,
                check=scan_range.kind,
                lo=scan_range.lo,
                hi=scan_range.hi,
                rows=result.rows_scanned,
                findings=len(result.findings),
                ms=duration_ms,
                worker=worker,
            )
        if progress:
            scan.refresh_from_db()
            progress(scan)


_CLAIM = """
UPDATE {range_table} SET status = 'running', claim_token = %(token)s,
       claimed_by = %(worker)s, claimed_at = %(now)s
WHERE id = (
    SELECT r.id FROM {range_table} AS r
    JOIN {scan_table} AS s ON s.id = r.scan_id
    WHERE r.scan_id = %(scan)s AND r.status = 'pending'
      AND s.status = 'running' AND s.snapshot_id = %(snapshot)s
    ORDER BY r.position
    LIMIT 1
    FOR UPDATE OF r SKIP LOCKED
)
RETURNING id, kind, lo, hi
"""


def _bookkeeping(cursor) -> None:
    """Commit progress without waiting for the WAL flush.

    Claims and range results are cheap to lose: after a crash the ranges
    they describe are simply run again on resume. Without this, the two
    commits per range cost more than a small range's query.
    """
    cursor.execute("SET LOCAL synchronous_commit = off")


def _claim(scan: DeepScan, *, worker: str) -> tuple[ScanRange, str] | None:
    """Take the next pending range, only while the scan runs on our snapshot.

    A conditional UPDATE: SKIP LOCKED lets workers on many machines take
    different ranges at once, and the snapshot condition keeps a helper of
    an earlier run (older snapshot) from taking ranges of a resumed scan.
    """
    token = uuid.uuid4().hex
    query = _CLAIM.format(
        range_table=ScanRange._meta.db_table, scan_table=DeepScan._meta.db_table
    )
    with transaction.atomic(), connection.cursor() as cursor:
        _bookkeeping(cursor)
        cursor.execute(
            query,
            {
                "token": token,
                "worker": worker[:120],
                "now": timezone.now(),
                "scan": scan.pk,
                "snapshot": scan.snapshot_id,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    range_id, kind, lo, hi = row
    return ScanRange(pk=range_id, scan=scan, kind=kind, lo=lo, hi=hi), token


def _release(scan_range: ScanRange, token: str) -> None:
    ScanRange.objects.filter(
        pk=scan_range.pk, status=ScanRange.Status.RUNNING, claim_token=token
    ).update(status=ScanRange.Status.PENDING, claim_token="", claimed_by="")


@transaction.atomic
def _record(scan, scan_range, token, result, *, duration_ms: int) -> bool:
    """Mark the range done with its findings, if our claim still holds."""
    with connection.cursor() as cursor:
        _bookkeeping(cursor)
    done = ScanRange.objects.filter(
        pk=scan_range.pk, status=ScanRange.Status.RUNNING, claim_token=token
    ).update(
        status=ScanRange.Status.DONE,
        finished_at=timezone.now(),
        run=scan.runs,
        snapshot_id=scan.snapshot_id,
        rows_scanned=result.rows_scanned,
        findings_count=len(result.findings),
        duration_ms=duration_ms,
    )
    if not done:
        log.warning("deep_scan.claim_lost", scan_id=scan.pk, range_id=scan_range.pk)
        return False
    Finding.objects.bulk_create(
        (_finding(scan, scan_range, data) for data in result.findings),
        batch_size=1000,
    )
    DeepScan.objects.filter(pk=scan.pk).update(
        ranges_done=F("ranges_done") + 1,
        rows_scanned=F("rows_scanned") + result.rows_scanned,
        findings_count=F("findings_count") + len(result.findings),
    )
    return True


def _finding(scan, scan_range, data: FindingData) -> Finding:
    return Finding(
        scan=scan,
        scan_range=scan_range,
        invariant=data.invariant,
        subject_type=data.subject_type,
        subject_key=data.subject_key,
        currency=data.currency,
        wallet_id=data.wallet_id,
        account_id=data.account_id,
        transaction_id=data.transaction_id,
        operation_kind=data.operation_kind,
        operation_id=data.operation_id,
        expected=data.expected,
        actual=data.actual,
        difference=data.difference,
        suspect_transaction_ids=data.suspect_transaction_ids,
        detail=data.detail,
    )


def _wait_for_others(scan: DeepScan, *, progress=None) -> bool:
    """Wait while helpers finish their ranges; True when one is pending again."""
    lease = settings.RECON_RANGE_LEASE_SECONDS
    while True:
        ranges = ScanRange.objects.filter(scan=scan)
        if ranges.filter(status=ScanRange.Status.PENDING).exists():
            return True
        expired = ScanRange.objects.filter(
            scan=scan,
            status=ScanRange.Status.RUNNING,
            claimed_at__lt=timezone.now() - timedelta(seconds=lease),
        ).update(status=ScanRange.Status.PENDING, claim_token="", claimed_by="")
        if expired:
            log.warning("deep_scan.lease_expired", scan_id=scan.pk, ranges=expired)
            return True
        if not ranges.filter(status=ScanRange.Status.RUNNING).exists():
            return False
        if progress:
            scan.refresh_from_db()
            progress(scan)
        time.sleep(0.5)


def _scan_finish(scan: DeepScan, *, settle_tickets: bool) -> None:
    scan.refresh_from_db()
    if settle_tickets:
        counts = tickets_settle(scan=scan)
        scan.tickets_opened = counts.opened
        scan.tickets_updated = counts.updated
        scan.tickets_closed = counts.closed
    scan.status = DeepScan.Status.DONE
    scan.finished_at = timezone.now()
    scan.save(
        update_fields=[
            "status",
            "finished_at",
            "tickets_opened",
            "tickets_updated",
            "tickets_closed",
        ]
    )
    log.info(
        "deep_scan.done",
        scan_id=scan.pk,
        rows=scan.rows_scanned,
        findings=scan.findings_count,
        opened=scan.tickets_opened,
        closed=scan.tickets_closed,
    )


def _scan_interrupt(scan: DeepScan, *, error: BaseException) -> None:
    reason = type(error).__name__ + (f": {error}" if str(error) else "")
    try:
        DeepScan.objects.filter(pk=scan.pk, status=DeepScan.Status.RUNNING).update(
            status=DeepScan.Status.INTERRUPTED, error=reason[:500]
        )
    except Exception:
        log.exception("deep_scan.interrupt_not_recorded", scan_id=scan.pk)
    log.warning("deep_scan.interrupted", scan_id=scan.pk, reason=reason[:200])


def _worker_name(role: str) -> str:
    return (
        f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}:{role}"
    )
