"""breakglass_audit_append builds the same hash chain as security.audit."""

import json

import pytest
from django.db import DatabaseError, connection, transaction

from security.audit import audit_chain_verify, audit_record, entry_digest
from security.models import AuditEntry
from tests.factories import make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

AWKWARD = 'quotes " and \\ backslash, a\nnewline, a\ttab, \x01, \x7f, é, ß, 😀'


def _append(username, action="breakglass.started", reason="r", before=None, after=None):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT breakglass_audit_append(%s, %s, %s, %s, %s, %s, %s::jsonb, "
            "%s::jsonb, %s)",
            [
                username,
                action,
                reason,
                "finance.payout",
                "7",
                AWKWARD,
                None if before is None else json.dumps(before),
                None if after is None else json.dumps(after),
                "OPS-1",
            ],
        )
        return AuditEntry.objects.get(pk=cursor.fetchone()[0])


def test_an_entry_from_sql_hashes_as_python_would():
    user = make_staff(username="dana.doer")
    audit_record(actor=user, action="test.before", after={"n": 1})

    entry = _append(
        "dana.doer",
        reason=AWKWARD,
        before={"z": [1, -2, True, None, {"é": "ü", "a": AWKWARD}], "a": 0},
        after={"ticket": "OPS-1", "nested": {"b": {"c": []}}},
    )
    audit_record(actor=user, action="test.after")

    assert entry.entry_hash == entry_digest(entry)
    assert entry.actor == user
    report = audit_chain_verify()
    assert (report.intact, report.checked) == (True, 3)


def test_it_refuses_a_decimal_that_python_could_print_differently():
    make_staff(username="dana.doer")

    with pytest.raises(DatabaseError, match="whole numbers only"), transaction.atomic():
        _append("dana.doer", after={"amount": 1.50})


def test_it_refuses_an_unknown_person_and_an_empty_reason():
    make_staff(username="dana.doer")

    with pytest.raises(DatabaseError, match="no active user"), transaction.atomic():
        _append("nobody")
    with pytest.raises(DatabaseError, match="needs a reason"), transaction.atomic():
        _append("dana.doer", reason="  ")
    assert not AuditEntry.objects.exists()
