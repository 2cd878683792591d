r"""``breakglass_audit_append(...)``: a correct audit entry from psql.

The break-glass procedure (docs/runbook.md, "Fixing a stuck finance state")
runs when the admin cannot. Its audit entries must join the same hash chain
as security.audit.audit_record writes, inside the very transaction that
makes the fix, so this function rebuilds security.audit.entry_digest in
PL/pgSQL:

1. Take the same transaction-scoped advisory lock as audit_record
   (0x6175646974), so appends from psql and from the application queue
   one behind the other.
2. Read the head of the chain (the newest entry's hash; 64 zeros if none).
3. Build the canonical JSON exactly as Python's
   ``json.dumps(..., sort_keys=True, separators=(",", ":"))`` does:
   keys in code-point order, strings escaped to ASCII (``\uXXXX``, with
   surrogate pairs beyond the BMP), whole numbers only (a decimal could
   print differently in Python; the function refuses one).
4. Insert the entry with ``previous_hash`` and its SHA-256 ``entry_hash``.

Only ``breakglass.*`` actions are accepted (nobody forges an approval from
psql), by an existing active user named by username. The test suite checks
the result with ``verify_audit_chain`` on awkward input (quotes, newlines,
accents, emoji, nested objects). If security.audit.entry_digest ever
changes, these functions must change with it; the same tests will fail
until they do.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION breakglass_json_string(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    result text := '"';
    ch text;
    code integer;
BEGIN
    FOR i IN 1 .. char_length(value) LOOP
        ch := substr(value, i, 1);
        code := ascii(ch);
        IF ch = '"' THEN
            result := result || '\"';
        ELSIF ch = '\' THEN
            result := result || '\\';
        ELSIF code = 10 THEN
            result := result || '\n';
        ELSIF code = 13 THEN
            result := result || '\r';
        ELSIF code = 9 THEN
            result := result || '\t';
        ELSIF code = 8 THEN
            result := result || '\b';
        ELSIF code = 12 THEN
            result := result || '\f';
        ELSIF code BETWEEN 32 AND 126 THEN
            result := result || ch;
        ELSIF code >= 65536 THEN
            code := code - 65536;
            result := result
                || '\u' || lpad(to_hex(55296 + (code >> 10)), 4, '0')
                || '\u' || lpad(to_hex(56320 + (code & 1023)), 4, '0');
        ELSE
            result := result || '\u' || lpad(to_hex(code), 4, '0');
        END IF;
    END LOOP;
    RETURN result || '"';
END
$$;

CREATE FUNCTION breakglass_json_canonical(value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    kind text := jsonb_typeof(value);
    result text;
BEGIN
    IF value IS NULL OR kind = 'null' THEN
        RETURN 'null';
    ELSIF kind = 'string' THEN
        RETURN breakglass_json_string(value #>> '{}');
    ELSIF kind = 'boolean' THEN
        RETURN value::text;
    ELSIF kind = 'number' THEN
        IF value::text !~ '^(0|-?[1-9][0-9]*)$' THEN
            RAISE EXCEPTION 'audit entries take whole numbers only, not %', value::text;
        END IF;
        RETURN value::text;
    ELSIF kind = 'array' THEN
        SELECT '[' || coalesce(string_agg(breakglass_json_canonical(element), ','
                                          ORDER BY position), '') || ']'
          INTO result
          FROM jsonb_array_elements(value) WITH ORDINALITY AS items(element, position);
        RETURN result;
    END IF;
    SELECT '{' || coalesce(string_agg(breakglass_json_string(key) || ':'
                                      || breakglass_json_canonical(element), ','
                                      ORDER BY key COLLATE "C"), '') || '}'
      INTO result
      FROM jsonb_each(value) AS items(key, element);
    RETURN result;
END
$$;

CREATE FUNCTION breakglass_audit_append(
    actor_username text,
    action text,
    reason text,
    target_type text DEFAULT '',
    target_id text DEFAULT '',
    target_repr text DEFAULT '',
    before jsonb DEFAULT NULL,
    after jsonb DEFAULT NULL,
    request_id text DEFAULT ''
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    actor integer;
    created timestamptz := date_trunc('microseconds', clock_timestamp());
    head text;
    canonical text;
    digest text;
    new_id bigint;
BEGIN
    IF action NOT LIKE 'breakglass.%' THEN
        RAISE EXCEPTION 'only breakglass.* entries are appended from SQL, not %', action;
    END IF;
    IF coalesce(btrim(reason), '') = '' THEN
        RAISE EXCEPTION 'a break-glass audit entry needs a reason';
    END IF;
    SELECT id INTO actor FROM auth_user
     WHERE username = breakglass_audit_append.actor_username AND is_active;
    IF actor IS NULL THEN
        RAISE EXCEPTION 'no active user %', actor_username;
    END IF;

    PERFORM pg_advisory_xact_lock(418581342580);  -- 0x6175646974, "audit"
    SELECT entry_hash INTO head FROM security_auditentry ORDER BY id DESC LIMIT 1;
    head := coalesce(head, repeat('0', 64));

    canonical := '{'
        || '"action":' || breakglass_json_string(action)
        || ',"actor_id":' || actor
        || ',"actor_username":' || breakglass_json_string(actor_username)
        || ',"after":' || breakglass_json_canonical(after)
        || ',"before":' || breakglass_json_canonical(before)
        || ',"created_at":' || breakglass_json_string(
               to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
               || '+00:00')
        || ',"ip":""'
        || ',"previous_hash":' || breakglass_json_string(head)
        || ',"reason":' || breakglass_json_string(reason)
        || ',"request_id":' || breakglass_json_string(request_id)
        || ',"target_id":' || breakglass_json_string(target_id)
        || ',"target_repr":' || breakglass_json_string(target_repr)
        || ',"target_type":' || breakglass_json_string(target_type)
        || '}';
    digest := encode(sha256(convert_to(canonical, 'UTF8')), 'hex');

    INSERT INTO security_auditentry (
        created_at, actor_id, actor_username, action, target_type, target_id,
        target_repr, before, after, reason, ip, request_id, previous_hash,
        entry_hash
    ) VALUES (
        created, actor, actor_username, action, target_type, target_id,
        target_repr, before, after, reason, '', request_id, head, digest
    ) RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
"""

BACKWARD = """
DROP FUNCTION breakglass_audit_append(
    text, text, text, text, text, text, jsonb, jsonb, text);
DROP FUNCTION breakglass_json_canonical(jsonb);
DROP FUNCTION breakglass_json_string(text);
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("overrides", "0002_requests_immutable_in_database"),
        ("security", "0002_audit_log_append_only"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD)),
    ]
