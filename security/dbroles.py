"""The two PostgreSQL roles opsadmin runs under, and a check of which one
a process is using.

The database refuses to update or delete postings, journal transactions,
audit entries and override requests (triggers of finance, security and
overrides migrations 0002). A trigger binds everyone except the table's
owner, who may disable or drop it, and TRUNCATE fires no row trigger at
all. So the role that serves requests and runs jobs must own nothing and
hold no TRUNCATE:

- the owner role (``opsadmin_owner``) owns the schema's tables; only the
  one-off ``migrate`` run connects as it;
- the application role (``opsadmin_app``) may SELECT, INSERT, UPDATE and
  DELETE on every table and use the sequences, through default privileges
  that also cover the tables later migrations create. Nothing more.

``roles_sql`` writes the statements that set this up (idempotent: they can
run again after any migration, and on a database whose tables belong to
another role, which they move to the owner role). Passwords are not part
of them. ``role_findings`` says what is wrong with the role a connection
uses; ``opsadmin.W005`` (``manage.py check --deploy --database default``)
reports it.
"""

from psycopg import sql

OWNER = "opsadmin_owner"
APP = "opsadmin_app"
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT"


def roles_sql(
    database: str, *, owner: str = OWNER, app: str = APP
) -> list[sql.Composable]:
    """Statements, in order, that a superuser (or the database's owner with
    CREATEROLE) runs on ``database`` to put its schema ``public`` under
    ``owner`` and give ``app`` exactly the application's privileges."""
    o, a, db = sql.Identifier(owner), sql.Identifier(app), sql.Identifier(database)
    create = sql.SQL(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) "
        "THEN CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
        "NOBYPASSRLS; END IF; END $$"
    )
    # Everything in public that is not the owner's yet, extensions' objects
    # aside: tables (their sequences follow them), views, and the functions
    # of the migrations' triggers.
    move = sql.SQL(
        "DO $$ DECLARE r record; BEGIN "
        "FOR r IN SELECT c.oid::regclass AS name FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = {name}) "
        "AND NOT EXISTS (SELECT FROM pg_depend d "
        "WHERE d.objid = c.oid AND d.deptype = 'e') LOOP "
        "EXECUTE format('ALTER TABLE %s OWNER TO %I', r.name, {name}); END LOOP; "
        "FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' "
        "AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = {name}) "
        "AND NOT EXISTS (SELECT FROM pg_depend d "
        "WHERE d.objid = p.oid AND d.deptype = 'e') LOOP "
        "EXECUTE format('ALTER FUNCTION %s OWNER TO %I', r.name, {name}); END LOOP; "
        "END $$"
    )
    return [
        create.format(name=sql.Literal(owner), role=o),
        create.format(name=sql.Literal(app), role=a),
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {o}, {a}").format(
            db=db, o=o, a=a
        ),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {o}").format(o=o),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {a}").format(a=a),
        move.format(name=sql.Literal(owner)),
        # What the application may do with the tables there are ...
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {a}").format(a=a),
        sql.SQL(
            f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {{a}}"
        ).format(a=a),
        sql.SQL(
            f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA public TO {{a}}"
        ).format(a=a),
        # ... and with those the owner's later migrations create.
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public "
            f"GRANT {TABLE_PRIVILEGES} ON TABLES TO {{a}}"
        ).format(o=o, a=a),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public "
            f"GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {{a}}"
        ).format(o=o, a=a),
    ]


def role_findings(cursor) -> list[str]:
    """What lets the connected role get past the database's append-only
    rules: being a superuser, owning tables, holding TRUNCATE or TRIGGER.
    ``cursor`` is any DB-API cursor on PostgreSQL."""
    cursor.execute(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user"
    )
    user, superuser, bypassrls = cursor.fetchone()
    findings = []
    if superuser:
        findings.append(f"{user} is a superuser")
    if bypassrls:
        findings.append(f"{user} bypasses row-level security")
    cursor.execute(
        "SELECT c.relname, pg_has_role(c.relowner, 'USAGE'), "
        "has_table_privilege(c.oid, 'TRUNCATE'), "
        "has_table_privilege(c.oid, 'TRIGGER') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    rows = cursor.fetchall()
    for label, column in (("owns", 1), ("may TRUNCATE", 2), ("may add triggers to", 3)):
        tables = [row[0] for row in rows if row[column]]
        if tables and not superuser:
            shown = ", ".join(tables[:5]) + (" ..." if len(tables) > 5 else "")
            findings.append(f"{user} {label} {len(tables)} tables ({shown})")
    return findings
