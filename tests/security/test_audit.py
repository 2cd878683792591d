import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from security.audit import GENESIS_HASH, audit_chain_verify, audit_record
from security.models import AuditEntry
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _record(n=3, **fields):
    actor = make_user()
    return [
        audit_record(actor=actor, action="test.event", after={"n": i}, **fields)
        for i in range(n)
    ]


def test_each_entry_chains_to_the_one_before():
    first, second, third = _record()

    assert first.previous_hash == GENESIS_HASH
    assert second.previous_hash == first.entry_hash
    assert third.previous_hash == second.entry_hash


def test_verify_audit_chain_reports_an_intact_chain():
    entries = _record()
    out = StringIO()

    call_command("verify_audit_chain", stdout=out)

    assert f"3 entries, head {entries[-1].entry_hash}" in out.getvalue()


def test_it_keeps_who_what_and_from_where(rf):
    actor = make_user(username="grace")
    request = rf.post("/x", REMOTE_ADDR="203.0.113.9")
    request.request_id = "req-42"

    entry = audit_record(
        actor=actor,
        action="role.assigned",
        target=actor,
        before={"roles": []},
        after={"roles": ["Viewer"]},
        request=request,
        reason="TICKET-9",
    )

    entry.refresh_from_db()
    assert (entry.actor_username, entry.ip, entry.request_id) == (
        "grace",
        "203.0.113.9",
        "req-42",
    )
    assert (entry.target_type, entry.target_id) == ("auth.user", str(actor.pk))
    assert entry.after == {"roles": ["Viewer"]}
    assert audit_chain_verify().intact


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE security_auditentry SET reason = 'rewritten'",
        "DELETE FROM security_auditentry",
    ],
)
def test_the_database_refuses_to_change_the_log(sql):
    _record(1)

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)


@pytest.mark.postgres
def test_verify_audit_chain_names_a_row_edited_behind_the_triggers():
    entries = _record(4)
    tampered = entries[2]
    with connection.cursor() as cursor:
        # What only a database superuser can do: switch the triggers off.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE security_auditentry SET after = %s WHERE id = %s",
            ['{"n": 99}', tampered.pk],
        )
        cursor.execute("SET session_replication_role = DEFAULT")

    with pytest.raises(
        CommandError, match=f"broken at entry {tampered.pk}: its content"
    ):
        call_command("verify_audit_chain")


@pytest.mark.postgres
def test_verify_audit_chain_names_the_entry_after_a_removed_one():
    entries = _record(4)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM security_auditentry WHERE id = %s", [entries[1].pk])
        cursor.execute("SET session_replication_role = DEFAULT")

    report = audit_chain_verify()

    assert report.broken_entry_id == entries[2].pk
    assert "previous_hash" in report.problem


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_fork_the_chain():
    actor = make_user()
    errors = []

    def append(worker):
        try:
            for i in range(5):
                with transaction.atomic():
                    audit_record(
                        actor=actor,
                        action="test.concurrent",
                        after={"w": worker, "i": i},
                    )
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert AuditEntry.objects.count() == 30
    assert audit_chain_verify().intact
