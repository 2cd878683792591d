"""The application's database role: it runs the product, and it cannot get
past the append-only rules that bind the ledger and the audit log."""

import os

import psycopg
import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from finance.models import Posting
from security.audit import audit_chain_verify, audit_record
from security.dbroles import role_findings
from tests.factories import make_deposit, make_wallet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def roles():
    """Two roles of this run's own (roles are the whole server's), and the
    tables given back to the test runner's role afterwards."""
    owner, app = f"test_owner_{os.getpid()}", f"test_app_{os.getpid()}"
    yield owner, app
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        for role in (owner, app):
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone():
                cursor.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
                cursor.execute(f'DROP OWNED BY "{role}"')
                cursor.execute(f'DROP ROLE "{role}"')


def _connect(role: str) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        dbname=settings["NAME"],
        user=role,
        autocommit=True,
    )


def _deploy_warnings() -> set[str]:
    return {
        m.id
        for m in run_checks(include_deployment_checks=True, databases=["default"])
        if m.id.startswith("opsadmin.")
    }


def test_the_app_role_runs_the_product_and_cannot_empty_the_ledger(roles):
    owner, app = roles
    call_command("database_roles", "--apply", owner=owner, app=app)

    with connection.cursor() as cursor:
        cursor.execute(f'SET ROLE "{app}"')
    # The product's own paths, under the application's role: a deposit
    # posts to the ledger, an audit entry joins the chain.
    deposit = make_deposit(wallet=make_wallet(), amount=2_500, succeed=True)
    audit_record(action="test.role", actor=None, target=deposit, reason="as the app")
    assert audit_chain_verify().intact
    postings = Posting.objects.count()
    assert postings >= 2

    with connection.cursor() as cursor:
        for statement, refusal in [
            ("TRUNCATE finance_posting CASCADE", "permission denied"),
            ("TRUNCATE security_auditentry", "permission denied"),
            (
                "ALTER TABLE finance_posting DISABLE TRIGGER USER",
                "must be owner",
            ),
            ("DROP TRIGGER finance_posting_append_only ON finance_posting", "owner"),
            ("DELETE FROM finance_posting", "append-only"),
            ("SET session_replication_role = replica", "permission denied"),
        ]:
            with pytest.raises(DatabaseError, match=refusal), transaction.atomic():
                cursor.execute(statement)
        assert role_findings(cursor) == []
    assert _deploy_warnings() == set()
    assert Posting.objects.count() == postings

    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        assert "is a superuser" in "; ".join(role_findings(cursor))
    assert _deploy_warnings() == {"opsadmin.W005"}


def test_tables_a_later_migration_creates_are_the_apps_to_use(roles):
    owner, app = roles
    call_command("database_roles", "--apply", owner=owner, app=app)

    with _connect(owner) as migrator:
        migrator.execute("CREATE TABLE later_table (id bigserial PRIMARY KEY, v int)")
    with _connect(app) as application:
        application.execute("INSERT INTO later_table (v) VALUES (1)")
        assert application.execute("SELECT v FROM later_table").fetchall() == [(1,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            application.execute("TRUNCATE later_table")
        assert role_findings(application.cursor()) == []
    with _connect(owner) as migrator:
        migrator.execute("DROP TABLE later_table")


def test_applying_again_changes_nothing_and_takes_back_extra_grants(roles):
    owner, app = roles
    call_command("database_roles", "--apply", owner=owner, app=app)
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT TRUNCATE ON finance_posting TO "{app}"')
        cursor.execute(f'SET ROLE "{app}"')
        assert role_findings(cursor) == [
            f"{app} may TRUNCATE 1 tables (finance_posting)"
        ]
        cursor.execute("RESET ROLE")

    call_command("database_roles", "--apply", owner=owner, app=app)

    with _connect(app) as application:
        assert role_findings(application.cursor()) == []


def test_the_command_prints_its_sql_without_applying_it(roles, capsys):
    owner, app = roles
    call_command("database_roles", owner=owner, app=app)

    printed = capsys.readouterr().out
    assert (
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
        f'TO "{app}"' in printed
    )
    assert "TRUNCATE" not in printed
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)", [owner, app]
        )
        assert cursor.fetchone() == (0,)


def test_one_role_for_both_is_refused(roles):
    owner, _ = roles
    with pytest.raises(CommandError, match="two roles"):
        call_command("database_roles", "--apply", owner=owner, app=owner)


def test_passwords_from_the_environment_are_stored_as_scram_verifiers(
    roles, monkeypatch
):
    owner, app = roles
    monkeypatch.setenv("OPSADMIN_DB_OWNER_PASSWORD", "owner-password-0123456789")
    monkeypatch.setenv("OPSADMIN_DB_APP_PASSWORD", "app-password-0123456789")
    call_command(
        "database_roles", "--apply", "--passwords-from-env", owner=owner, app=app
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN (%s, %s)",
            [owner, app],
        )
        stored = dict(cursor.fetchall())
    assert set(stored) == {owner, app}
    for verifier in stored.values():
        assert verifier.startswith("SCRAM-SHA-256$")
        assert "password" not in verifier


def test_a_short_or_missing_password_is_refused_before_anything_changes(
    roles, monkeypatch
):
    owner, app = roles
    monkeypatch.setenv("OPSADMIN_DB_OWNER_PASSWORD", "owner-password-0123456789")
    monkeypatch.setenv("OPSADMIN_DB_APP_PASSWORD", "short")

    with pytest.raises(CommandError, match="OPSADMIN_DB_APP_PASSWORD"):
        call_command(
            "database_roles", "--apply", "--passwords-from-env", owner=owner, app=app
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)", [owner, app]
        )
        assert cursor.fetchone() == (0,)
