import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from psycopg import sql

from security.dbroles import APP, OWNER, role_findings, roles_sql

PASSWORD_VARIABLES = ("OPSADMIN_DB_OWNER_PASSWORD", "OPSADMIN_DB_APP_PASSWORD")


class Command(BaseCommand):
    help = (
        "Print, or with --apply run, the SQL that puts this database's tables "
        "under an owner role used only by migrate and gives the application "
        "role nothing but SELECT, INSERT, UPDATE and DELETE (no TRUNCATE, no "
        "ownership), so the database's append-only rules bind the app. "
        "--apply needs a superuser connection. With --passwords-from-env it "
        "also sets the roles' passwords from OPSADMIN_DB_OWNER_PASSWORD and "
        "OPSADMIN_DB_APP_PASSWORD, sent as SCRAM verifiers (the server never "
        "sees them in clear). See docs/runbook.md, 'Database roles'."
    )

    def add_arguments(self, parser):
        parser.add_argument("--owner", default=OWNER, help="default %(default)s")
        parser.add_argument("--app", default=APP, help="default %(default)s")
        parser.add_argument(
            "--apply",
            action="store_true",
            help="run the statements, in one transaction",
        )
        parser.add_argument(
            "--passwords-from-env",
            action="store_true",
            help=f"with --apply: set passwords from {' and '.join(PASSWORD_VARIABLES)}",
        )

    def handle(self, *args, owner, app, apply, passwords_from_env, **options):
        if connection.vendor != "postgresql":
            raise CommandError("database roles are a PostgreSQL matter")
        if owner == app:
            raise CommandError("the owner and the application need two roles")
        if passwords_from_env and not apply:
            raise CommandError("--passwords-from-env goes with --apply")
        passwords = {}
        if passwords_from_env:
            for role, variable in zip((owner, app), PASSWORD_VARIABLES, strict=True):
                passwords[role] = os.environ.get(variable, "")
                if len(passwords[role]) < 16:
                    raise CommandError(f"{variable} must hold at least 16 characters")
        connection.ensure_connection()
        raw = connection.connection
        statements = roles_sql(connection.settings_dict["NAME"], owner=owner, app=app)
        if not apply:
            for statement in statements:
                self.stdout.write(statement.as_string(raw) + ";")
            return
        with transaction.atomic(), raw.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if not cursor.fetchone()[0]:
                raise CommandError("--apply needs a superuser connection")
            for statement in statements:
                cursor.execute(statement)
            for role, password in passwords.items():
                verifier = raw.pgconn.encrypt_password(
                    password.encode(), role.encode(), b"scram-sha-256"
                )
                cursor.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(verifier.decode())
                    )
                )
            # Look at the result as the application will, before committing.
            cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(app)))
            remaining = role_findings(cursor)
            cursor.execute("RESET ROLE")
            if remaining:
                raise CommandError("; ".join(remaining))
        self.stdout.write(
            self.style.SUCCESS(
                f"{owner} owns the tables (connect as it to migrate); {app} may "
                "read and write rows and nothing more."
            )
        )
