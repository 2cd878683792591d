"""The daily audit chain job: it pages on a broken chain and on a head
that has gone since its last run."""

import pytest
from django.db import connection

from alerts.models import Alert
from jobs.models import JobRun
from jobs.registry import job_get
from jobs.services import job_run
from security.audit import audit_record, entry_digest
from security.models import AuditEntry
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(autouse=True)
def _locks(clean_locks):
    return clean_locks


def _record(n: int) -> list[AuditEntry]:
    actor = make_user()
    return [
        audit_record(actor=actor, action="test.event", after={"n": i}) for i in range(n)
    ]


def _as_superuser_past_the_triggers(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(statement, params)
        cursor.execute("SET session_replication_role = DEFAULT")


def _run() -> JobRun:
    return job_run(name="verify_audit_chain", trigger="cron")


def test_it_is_a_registered_daily_critical_job():
    job = job_get("verify_audit_chain")

    assert job.period.days == 1
    assert job.severity == "critical"


def test_a_run_anchors_the_head_and_the_next_run_accepts_a_longer_chain():
    entries = _record(3)

    first = _run()
    more = _record(2)
    second = _run()

    assert first.outcome == second.outcome == JobRun.Outcome.SUCCESS
    assert first.counts == {
        "entries": 3,
        "head_id": entries[-1].pk,
        "head_hash": entries[-1].entry_hash,
    }
    assert second.counts["head_id"] == more[-1].pk
    assert "audit.chain_verified" in second.log
    assert more[-1].entry_hash in second.log
    assert not Alert.objects.exists()


def test_an_empty_log_is_verified_and_anchors_nothing():
    run = _run()

    assert run.outcome == JobRun.Outcome.SUCCESS
    assert run.counts == {
        "entries": 0,
        "head_id": None,
        "head_hash": run.counts["head_hash"],
    }
    audit_record(actor=make_user(), action="test.event")
    assert _run().outcome == JobRun.Outcome.SUCCESS


def test_an_edited_entry_fails_the_run_and_pages():
    entries = _record(3)
    _as_superuser_past_the_triggers(
        "UPDATE security_auditentry SET reason = 'nothing happened' WHERE id = %s",
        [entries[1].pk],
    )

    run = _run()

    assert run.outcome == JobRun.Outcome.FAILED
    assert f"broken at entry {entries[1].pk}" in run.error
    alert = Alert.objects.get(key="job.verify_audit_chain.failed")
    assert (alert.status, alert.severity) == ("triggered", "critical")


def test_entries_cut_from_the_end_since_the_last_run_fail_the_next_one():
    entries = _record(4)
    assert _run().outcome == JobRun.Outcome.SUCCESS
    # The chain that is left still holds: only the anchor can tell.
    _as_superuser_past_the_triggers(
        "DELETE FROM security_auditentry WHERE id >= %s", [entries[2].pk]
    )

    run = _run()

    assert run.outcome == JobRun.Outcome.FAILED
    assert f"audit entry {entries[-1].pk}, the head" in run.error
    assert "removed or rewritten" in run.error


def test_a_chain_rewritten_over_the_anchor_fails_the_next_run():
    entries = _record(2)
    assert _run().outcome == JobRun.Outcome.SUCCESS
    # Rewritten consistently (content and hash) so that the walk holds.
    head = entries[-1]
    head.reason = "rewritten"
    _as_superuser_past_the_triggers(
        "UPDATE security_auditentry SET reason = %s, entry_hash = %s WHERE id = %s",
        [head.reason, entry_digest(head), head.pk],
    )

    run = _run()

    assert run.outcome == JobRun.Outcome.FAILED
    assert "is gone or changed" in run.error
