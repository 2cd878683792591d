"""AddIndexOnline: migrations build indexes without blocking writes."""

import pytest
from django.apps import apps
from django.db import NotSupportedError, connection, transaction
from django.db.migrations.state import ProjectState
from django.test.utils import CaptureQueriesContext

from opsadmin.schema import AddIndexOnline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _migration_operation(name: str) -> AddIndexOnline:
    from django.db.migrations.loader import MigrationLoader

    migration = MigrationLoader(connection).get_migration(
        "finance", "0005_admin_search_indexes"
    )
    assert migration.atomic is False
    return next(op for op in migration.operations if op.index.name == name)


def _index(name: str):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indexrelid = to_regclass(%s)",
            [name],
        )
        return cursor.fetchone()


def test_the_search_indexes_are_built_and_dropped_concurrently():
    operation = _migration_operation("customer_email_upper")
    before = ProjectState.from_apps(apps)
    after = before.clone()
    assert _index("customer_email_upper")[0] is True

    with (
        CaptureQueriesContext(connection) as queries,
        connection.schema_editor(atomic=False) as editor,
    ):
        operation.database_backwards("finance", editor, after, before)
    assert _index("customer_email_upper") is None
    assert any("DROP INDEX CONCURRENTLY" in q["sql"] for q in queries)

    with (
        CaptureQueriesContext(connection) as queries,
        connection.schema_editor(atomic=False) as editor,
    ):
        operation.database_forwards("finance", editor, before, after)
    valid, definition = _index("customer_email_upper")
    assert valid is True
    assert "upper((email)::text)" in definition
    assert any("CREATE INDEX CONCURRENTLY" in q["sql"] for q in queries)


def test_an_online_build_refuses_to_run_inside_a_transaction():
    operation = _migration_operation("payout_provider_reference")
    state = ProjectState.from_apps(apps)
    with (
        pytest.raises(NotSupportedError, match="atomic = False"),
        transaction.atomic(),
        connection.schema_editor(atomic=False) as editor,
    ):
        operation.database_backwards("finance", editor, state, state.clone())
    assert _index("payout_provider_reference")[0] is True
