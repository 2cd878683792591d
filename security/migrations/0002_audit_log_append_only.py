"""The audit log is append-only, enforced by PostgreSQL itself.

UPDATE and DELETE on security_auditentry are refused for everyone, whatever
the code path or the hand-written SQL. Only a database superuser who turns
triggers off (session_replication_role = replica) gets past this, and the
hash chain (verify_audit_chain) shows what they changed. TRUNCATE is not
refused, as in finance: the test suite empties tables with it; the
application's database role owns no table and holds no TRUNCATE in
production (manage.py database_roles).

On SQLite (development only) this is left to the application code.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION security_refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER security_auditentry_append_only
    BEFORE UPDATE OR DELETE ON security_auditentry
    FOR EACH ROW EXECUTE FUNCTION security_refuse_audit_change();
"""

BACKWARD = """
DROP TRIGGER security_auditentry_append_only ON security_auditentry;
DROP FUNCTION security_refuse_audit_change();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("security", "0001_initial")]

    operations = [
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD)),
    ]
