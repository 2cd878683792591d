"""Nothing about a request changes after submission: service, admin, SQL."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse

from overrides.errors import Tampered
from overrides.models import ImmutableRequest, OverrideRequest
from overrides.services import override_request_approve
from tests.conftest import log_in_verified as log_in
from tests.factories import make_override, make_stuck_payout
from tests.overrides.conftest import approve_data, request_of

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

CONTENT_COLUMNS = {
    "target_kind": "'deposit'",
    "target_id": "target_id + 1",
    "target_state": "'paid'",
    "target_version": "target_version + 1",
    "action": "'suspense_adjustment'",
    "params": """'{"amount": 1}'::jsonb""",
    "reason": "'something else'",
    "ticket_reference": "'OPS-0'",
    "doer_id": "%(other_user)s",
    "submitted_at": "submitted_at - interval '1 hour'",
    "expires_at": "expires_at + interval '1 day'",
    "content_hash": "repeat('a', 64)",
    "submitted_preview": "'{}'::jsonb",
}


@pytest.fixture
def override(doer):
    return make_override(target=make_stuck_payout(), doer=doer, reason="as asked")


def _sql(statement: str, *params):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_saving_a_changed_request_is_refused(override):
    override.reason = "as I would now like it"

    with pytest.raises(ImmutableRequest):
        override.save()
    with pytest.raises(ImmutableRequest):
        override.delete()
    override.refresh_from_db()
    assert override.reason == "as asked"


def test_the_admin_offers_no_way_to_edit_or_delete(override, doer):
    client = log_in(Client(), doer)
    change = reverse("admin:overrides_overriderequest_change", args=[override.pk])
    delete = reverse("admin:overrides_overriderequest_delete", args=[override.pk])

    edited = client.post(change, {"reason": "edited", "ticket_reference": "OPS-0"})
    deleted = client.post(delete, {"post": "yes"})

    assert edited.status_code == 403
    assert deleted.status_code == 403
    override.refresh_from_db()
    assert (override.reason, override.status) == ("as asked", "submitted")


@pytest.mark.parametrize("column", sorted(CONTENT_COLUMNS))
def test_the_database_refuses_sql_that_edits_the_content(override, column, approver):
    value = CONTENT_COLUMNS[column] % {"other_user": approver.pk}

    with pytest.raises(IntegrityError, match="content cannot change"):
        _sql(
            f"UPDATE overrides_overriderequest SET {column} = {value} WHERE id = %s",
            override.pk,
        )


@pytest.mark.parametrize(
    ("start", "to"),
    [
        ("submitted", "executed"),
        ("submitted", "executing"),
        ("submitted", "failed"),
        ("submitted", "submitted"),
    ],
)
def test_the_database_refuses_status_moves_off_the_workflow(override, start, to):
    with pytest.raises(IntegrityError, match=f"{start} cannot become {to}"):
        _sql(
            "UPDATE overrides_overriderequest SET status = %s WHERE id = %s",
            to,
            override.pk,
        )


def test_the_database_refuses_reopening_a_closed_request(override):
    _sql(
        "UPDATE overrides_overriderequest SET status = 'withdrawn', "
        "closed_at = now(), close_reason = 'x' WHERE id = %s",
        override.pk,
    )

    with pytest.raises(IntegrityError, match="withdrawn cannot become submitted"):
        _sql(
            "UPDATE overrides_overriderequest SET status = 'submitted' WHERE id = %s",
            override.pk,
        )


def test_the_database_refuses_an_approval_without_approver_or_hash(override):
    with pytest.raises(IntegrityError, match="names its approver"):
        _sql(
            "UPDATE overrides_overriderequest SET status = 'approved' WHERE id = %s",
            override.pk,
        )


def test_the_database_refuses_writing_an_outcome_while_approving(override, approver):
    with pytest.raises(IntegrityError, match="only execution writes"):
        _sql(
            "UPDATE overrides_overriderequest SET status = 'approved', "
            "approver_id = %s, approved_at = now(), approval_hash = repeat('b', 64), "
            "execution_result = '{}'::jsonb WHERE id = %s",
            approver.pk,
            override.pk,
        )


def test_the_database_refuses_deleting_a_request(override):
    with pytest.raises(IntegrityError, match="never deleted"):
        _sql("DELETE FROM overrides_overriderequest WHERE id = %s", override.pk)


def test_the_database_refuses_inserting_an_approved_request(override, approver):
    with pytest.raises(IntegrityError, match="submitted and undecided"):
        _sql(
            "INSERT INTO overrides_overriderequest (target_kind, target_id, "
            "target_state, target_version, action, params, reason, "
            "ticket_reference, doer_id, submitted_at, expires_at, content_hash, "
            "submitted_preview, status, approver_id, approval_hash, close_reason, "
            "execution_error) SELECT target_kind, target_id + 1000, target_state, "
            "target_version, action, params, reason, ticket_reference, doer_id, "
            "submitted_at, expires_at, repeat('c', 64), submitted_preview, "
            "'approved', %s, '', '', '' FROM overrides_overriderequest WHERE id = %s",
            approver.pk,
            override.pk,
        )


def test_an_edit_made_with_the_triggers_off_is_caught_by_the_hash(override, approver):
    # A database superuser can switch triggers off; the content hash still
    # tells the approval that the request is not what was submitted.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE overrides_overriderequest SET reason = 'quietly changed' "
            "WHERE id = %s",
            [override.pk],
        )
    client = log_in(Client(), approver)

    with pytest.raises(Tampered, match="no longer matches"):
        override_request_approve(
            override_id=override.pk,
            approver=approver,
            request=request_of(client, approver),
            **approve_data(override),
        )
    assert OverrideRequest.objects.get(pk=override.pk).status == "submitted"
