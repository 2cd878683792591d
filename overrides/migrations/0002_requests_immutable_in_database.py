"""An override request cannot be edited, by any code path or hand-written SQL.

PostgreSQL itself, for every role that does not turn triggers off:

1. A request is inserted as submitted, with no decision on it.
2. Its content (what was asked, by whom, about which version of the target,
   its hash and its deadline) never changes after the INSERT.
3. Its status moves only along the workflow (overrides.models
   OverrideRequest.MOVES), and each group of decision columns is written
   only by its own move: the approval by submitted -> approved, the closing
   by -> rejected/withdrawn/expired, the outcome by executing ->
   executed/failed. Nothing is written twice.
4. A request is never deleted. TRUNCATE is not refused (the test suite
   empties tables with it); in production the application's role owns no
   table and holds no TRUNCATE (manage.py database_roles).

On SQLite (development only) the service layer's checks are all there is.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION overrides_guard_request() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    allowed text[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'override request %: requests are never deleted', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'submitted'
           OR NEW.approver_id IS NOT NULL OR NEW.approved_at IS NOT NULL
           OR NEW.approval_hash <> ''
           OR NEW.closed_by_id IS NOT NULL OR NEW.closed_at IS NOT NULL
           OR NEW.close_reason <> ''
           OR NEW.executed_at IS NOT NULL OR NEW.execution_result IS NOT NULL
           OR NEW.execution_error <> '' THEN
            RAISE EXCEPTION 'override request: a new request is submitted and undecided'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;

    IF (NEW.id, NEW.target_kind, NEW.target_id, NEW.target_state,
        NEW.target_version, NEW.action, NEW.params, NEW.reason,
        NEW.ticket_reference, NEW.doer_id, NEW.submitted_at, NEW.expires_at,
        NEW.content_hash, NEW.submitted_preview)
       IS DISTINCT FROM
       (OLD.id, OLD.target_kind, OLD.target_id, OLD.target_state,
        OLD.target_version, OLD.action, OLD.params, OLD.reason,
        OLD.ticket_reference, OLD.doer_id, OLD.submitted_at, OLD.expires_at,
        OLD.content_hash, OLD.submitted_preview) THEN
        RAISE EXCEPTION 'override request %: its content cannot change after submission', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    allowed := CASE OLD.status
        WHEN 'submitted' THEN ARRAY['approved', 'rejected', 'withdrawn', 'expired']
        WHEN 'approved' THEN ARRAY['executing', 'expired']
        WHEN 'executing' THEN ARRAY['executed', 'failed']
        ELSE ARRAY[]::text[]
    END;
    IF NOT (NEW.status = ANY (allowed)) THEN
        RAISE EXCEPTION 'override request %: % cannot become %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    IF (NEW.approver_id, NEW.approved_at, NEW.approval_hash)
       IS DISTINCT FROM (OLD.approver_id, OLD.approved_at, OLD.approval_hash)
       AND NEW.status <> 'approved' THEN
        RAISE EXCEPTION 'override request %: only approving writes the approval', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.status = 'approved' AND (NEW.approver_id IS NULL
       OR NEW.approved_at IS NULL OR NEW.approval_hash = '') THEN
        RAISE EXCEPTION 'override request %: an approval names its approver, time and hash', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.closed_by_id, NEW.closed_at, NEW.close_reason)
       IS DISTINCT FROM (OLD.closed_by_id, OLD.closed_at, OLD.close_reason)
       AND NEW.status NOT IN ('rejected', 'withdrawn', 'expired') THEN
        RAISE EXCEPTION 'override request %: only closing writes who closed it', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.executed_at, NEW.execution_result, NEW.execution_error)
       IS DISTINCT FROM (OLD.executed_at, OLD.execution_result, OLD.execution_error)
       AND NEW.status NOT IN ('executed', 'failed') THEN
        RAISE EXCEPTION 'override request %: only execution writes its outcome', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER overrides_request_guard
    BEFORE INSERT OR UPDATE OR DELETE ON overrides_overriderequest
    FOR EACH ROW EXECUTE FUNCTION overrides_guard_request();
"""

BACKWARD = """
DROP TRIGGER overrides_request_guard ON overrides_overriderequest;
DROP FUNCTION overrides_guard_request();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            # Straight to the cursor: the SQL has % signs and no parameters.
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("overrides", "0001_initial")]

    operations = [
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD)),
    ]
