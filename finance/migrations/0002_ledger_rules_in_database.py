"""The ledger's rules, enforced by PostgreSQL itself.

1. Postings and journal transactions are append-only: UPDATE and DELETE are
   refused for everyone, whatever the code path or the hand-written SQL.
   A correction is a new reversing transaction.
2. Every INSERT statement into finance_posting must leave each transaction
   it touched balanced (postings sum to zero per currency). The check runs
   once per statement over a transition table, so bulk loads pay one
   aggregate per statement instead of one trigger call per row; the price
   is that a transaction's postings must arrive in a single statement.

On SQLite (development only) these are left to the application code.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION finance_refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'post a reversing transaction instead';
END
$$;

CREATE TRIGGER finance_posting_append_only
    BEFORE UPDATE OR DELETE ON finance_posting
    FOR EACH ROW EXECUTE FUNCTION finance_refuse_ledger_change();

CREATE TRIGGER finance_ledgertransaction_append_only
    BEFORE UPDATE OR DELETE ON finance_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION finance_refuse_ledger_change();

CREATE FUNCTION finance_check_postings_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unbalanced record;
BEGIN
    SELECT p.transaction_id, p.currency, sum(p.amount) AS total
      INTO unbalanced
      FROM finance_posting p
     WHERE p.transaction_id IN (SELECT DISTINCT transaction_id FROM new_postings)
     GROUP BY p.transaction_id, p.currency
    HAVING sum(p.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: % postings sum to %',
            unbalanced.transaction_id, unbalanced.currency, unbalanced.total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER finance_posting_balanced
    AFTER INSERT ON finance_posting
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION finance_check_postings_balanced();
"""

BACKWARD = """
DROP TRIGGER finance_posting_balanced ON finance_posting;
DROP FUNCTION finance_check_postings_balanced();
DROP TRIGGER finance_ledgertransaction_append_only ON finance_ledgertransaction;
DROP TRIGGER finance_posting_append_only ON finance_posting;
DROP FUNCTION finance_refuse_ledger_change();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            # Straight to the cursor: the SQL has % signs and no parameters.
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("finance", "0001_initial")]

    operations = [
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD)),
    ]
