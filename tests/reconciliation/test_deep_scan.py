"""How the deep scan runs: one snapshot, shared ranges, resume, entry points."""

import random
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections

from finance.models import Posting
from finance.services.payouts import payout_pay
from jobs.models import JobRun
from jobs.services import job_run
from reconciliation.jobs import deep_reconciliation_weekly
from reconciliation.models import DeepScan, Finding, ReconciliationTicket, ScanRange
from reconciliation.services.deep import (
    SCAN_LOCK_KEY,
    ScanBusy,
    deep_reconcile_help,
    deep_reconcile_run,
)
from tests.factories import make_deposit, make_payout, make_wallet
from tests.reconciliation.scanning import break_wallet, found, scan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _wallet_postings() -> int:
    return Posting.objects.filter(account__kind="wallet").count()


def test_it_does_not_see_a_posting_committed_after_its_snapshot(books):
    late_wallet = make_wallet()
    at_start = _wallet_postings()

    def deposit_once(scan_row):
        if scan_row.ranges_done == 1:
            # Committed on this thread's own connection, after the export.
            make_deposit(wallet=late_wallet, amount=4_321, succeed=True)

    result = scan(checks=["wallets"], range_size=1, progress=deposit_once)

    assert _wallet_postings() == at_start + 1
    assert result.rows_scanned == at_start
    assert found(result) == set()


def test_a_helper_imports_the_coordinators_snapshot(books):
    late_wallet = make_wallet()
    at_start = _wallet_postings()
    helped = []

    def help_after_a_late_deposit(scan_row):
        if not helped:
            make_deposit(wallet=late_wallet, amount=4_321, succeed=True)
            helped.append(deep_reconcile_help(scan_id=scan_row.pk, worker="helper"))

    result = scan(checks=["wallets"], range_size=1, progress=help_after_a_late_deposit)

    ranges = ScanRange.objects.filter(scan_id=result.scan_id)
    assert helped[0] == ranges.filter(claimed_by="helper").count() > 0
    assert set(ranges.values_list("snapshot_id", flat=True)) == {
        DeepScan.objects.get(pk=result.scan_id).snapshot_id
    }
    assert result.rows_scanned == at_start


def test_it_reports_nothing_false_while_other_threads_post(books):
    wallets = [make_wallet(balance=100_000) for _ in range(4)]
    stop = threading.Event()
    errors = []

    def keep_posting(wallet):
        rng = random.Random(wallet.pk)
        try:
            while not stop.is_set():
                make_deposit(wallet=wallet, amount=rng.randint(100, 900), succeed=True)
                payout = make_payout(wallet=wallet, amount=rng.randint(50, 90), fee=5)
                payout_pay(payout_id=payout.pk, via="test", reason="paid")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=keep_posting, args=(w,)) for w in wallets]
    for thread in threads:
        thread.start()
    at_start = Posting.objects.count()

    def wait_for_writers(scan_row):
        # Hold the first range open until the writers have committed more.
        deadline = time.monotonic() + 30
        while Posting.objects.count() < at_start + 20 and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        result = scan(range_size=2, parallel=2, progress=wait_for_writers)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert errors == []
    assert Posting.objects.count() >= at_start + 20
    assert result.complete
    assert found(result) == set()


def test_a_resumed_scan_runs_exactly_the_ranges_not_done(books):
    alice, bob = books["alice"], books["bob"]
    break_wallet(alice, by=1)
    break_wallet(bob, by=2)

    def stop_after_three(scan_row):
        if scan_row.ranges_done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan(range_size=1, progress=stop_after_three)
    interrupted = DeepScan.objects.get()
    assert interrupted.status == DeepScan.Status.INTERRUPTED
    first_run = dict(
        ScanRange.objects.filter(status="done").values_list("pk", "finished_at")
    )
    assert len(first_run) == 3

    result = scan(resume=interrupted.pk)

    ranges = ScanRange.objects.filter(scan=interrupted)
    assert result.complete
    assert result.ranges_done == result.ranges_total == ranges.count()
    assert set(ranges.filter(run=1).values_list("pk", "finished_at")) == set(
        first_run.items()
    )
    assert set(ranges.filter(run=2).values_list("pk", flat=True)) == (
        set(ranges.values_list("pk", flat=True)) - set(first_run)
    )
    assert result.rows_scanned == sum(ranges.values_list("rows_scanned", flat=True))
    assert {f[1] for f in found(result)} == {f"wallet:{alice.pk}", f"wallet:{bob.pk}"}


def test_a_resume_takes_back_a_range_a_dead_worker_held(books):
    def stop_after_one(scan_row):
        if scan_row.ranges_done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan(progress=stop_after_one)
    held = ScanRange.objects.filter(status="pending").first()
    ScanRange.objects.filter(pk=held.pk).update(
        status="running", claim_token="dead", claimed_by="gone:1:helper"
    )

    result = scan(resume=held.scan_id)

    held.refresh_from_db()
    assert result.complete
    assert (held.status, held.run) == ("done", 2)


def test_it_shares_its_ranges_with_celery_helpers(books, celery_eager):
    result = deep_reconcile_run(
        parallel=2, workers="celery", ranges=2, via="test", settle_tickets=False
    )

    claimed_by = set(
        ScanRange.objects.filter(scan_id=result.scan_id).values_list(
            "claimed_by", flat=True
        )
    )
    assert result.complete
    assert any(name.endswith(":helper") for name in claimed_by)


def test_a_second_coordinator_is_refused(books):
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [SCAN_LOCK_KEY])
        with pytest.raises(ScanBusy):
            scan()
        assert deep_reconciliation_weekly() == {"skipped": 1}
    finally:
        other.close()
    assert not DeepScan.objects.exists()


def test_a_scan_left_running_by_a_dead_coordinator_is_marked_interrupted(books):
    orphan = DeepScan.objects.create(via="test", checks=["wallets"])

    scan(checks=["wallets"])

    orphan.refresh_from_db()
    assert orphan.status == DeepScan.Status.INTERRUPTED


def test_the_command_is_a_dry_run_unless_told_to_apply(books):
    alice = books["alice"]
    break_wallet(alice, by=9)
    out = StringIO()

    call_command("deep_reconcile", "--ranges", "2", stdout=out)

    assert "done: " in out.getvalue()
    assert f"wallet:{alice.pk}" in out.getvalue()
    assert "dry run" in out.getvalue()
    assert not ReconciliationTicket.objects.exists()

    call_command("deep_reconcile", "--apply", "--check", "wallets", stdout=out)

    assert ReconciliationTicket.objects.get().subject_key == f"wallet:{alice.pk}"
    assert "tickets: 1 opened" in out.getvalue()


@pytest.mark.redis
def test_the_weekly_job_scans_everything_and_settles_tickets(
    books,
    celery_eager,
    clean_locks,
):
    break_wallet(books["bob"], by=9)

    run = job_run(name="deep_reconciliation", trigger="manual")

    scan_row = DeepScan.objects.get(pk=run.counts["scan_id"])
    assert run.outcome == JobRun.Outcome.SUCCESS
    assert run.counts["complete"] is True
    assert run.counts["tickets_opened"] == 1
    assert scan_row.is_full
    assert scan_row.via == "job"
    assert Finding.objects.get().ticket is not None
