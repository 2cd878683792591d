"""Loading generated blocks: COPY on PostgreSQL, large bulk inserts on SQLite.

Both write one block's rows of a table in one statement, so every journal
transaction's postings arrive together (migration 0002 checks balance per
statement). Neither sends a row at a time.
"""

import json
from datetime import UTC, datetime

from django.db import connection

from finance.seeding.tables import Table

# Every time of day as COPY text, so a timestamp costs two lookups.
_CLOCK = [
    f"{second // 3_600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+00"
    for second in range(86_400)
]
# One encoder, not one per json.dumps call with non-default separators.
_JSON = json.JSONEncoder(separators=(",", ":")).encode


class Times(dict):
    """Epoch seconds to PostgreSQL text: day -> "YYYY-MM-DD ", made once."""

    def __missing__(self, day: int) -> str:
        prefix = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d ")
        self[day] = prefix
        return prefix

    def column(self, values) -> list:
        clock = _CLOCK
        return [
            None if t is None else self[t // 86_400] + clock[t % 86_400] for t in values
        ]


def copy_text(table: Table, rows: list, times: Times) -> str:
    """Rows as COPY text. Pure Python, so a child process can run it.

    Column by column, so that the per-value work runs in comprehensions
    and the per-row formatting in C (``map`` of one template over the
    rows). Every generated string is a word from plan.py's fixed lists or
    an id, never "None" and never with a tab, newline or backslash; so a
    field that prints as None can only be Python's None, which becomes \\N.
    """
    if not rows:
        return ""
    columns: list = list(zip(*rows, strict=True))
    for i, name in enumerate(table.columns):
        if name in table.times:
            columns[i] = times.column(columns[i])
        elif name in table.json:
            columns[i] = [None if v is None else _json(v) for v in columns[i]]
    template = "\t".join(["%s"] * len(table.columns)) + "\n"
    text = "".join(map(template.__mod__, zip(*columns, strict=True)))
    # Twice: "\tNone\tNone\t" overlaps, and replace() does not.
    for _ in range(2):
        text = text.replace("\tNone\t", "\t\\N\t")
    return text.replace("\tNone\n", "\t\\N\n")


def _json(value) -> str:
    return _JSON(value).replace("\\", "\\\\")


class CopyWriter:
    """PostgreSQL: one ``COPY ... FROM STDIN`` per table and block (psycopg 3).

    ``prepare`` does what the PostgreSQL manual advises for populating a
    database: it drops the loaded tables' foreign keys, secondary indexes
    and unique keys other than primary keys, and ``finish`` adds them back
    (one validating scan per key, one sort per index) instead of a lookup
    and an index insert per row.
    It all happens in the seeding transaction, so a failure restores them.
    The ledger's rules (migration 0002) stay on throughout; the balance
    check needs the index of postings by transaction, which is kept.
    """

    def __init__(self):
        self.times = Times()
        self.dropped_keys: list[tuple[str, str, str]] = []
        self.dropped_indexes: list[str] = []
        self.dropped_uniques: list[str] = []

    def prepare(self, tables: list[Table]) -> None:
        names = [table.model._meta.db_table for table in tables]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, "
                "pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
                [names],
            )
            self.dropped_keys = cursor.fetchall()
            cursor.execute(
                "SELECT i.indexrelid::regclass::text, "
                "pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid::regclass::text = ANY(%s) "
                "AND NOT i.indisunique AND NOT i.indisprimary",
                [names],
            )
            indexes = [
                (name, definition)
                for name, definition in cursor.fetchall()
                # The balance trigger looks postings up by transaction.
                if not definition.endswith("finance_posting USING btree "
                                           "(transaction_id)")
            ]  # fmt: skip
            for table, name, _ in self.dropped_keys:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, definition in indexes:
                cursor.execute(f"DROP INDEX {name}")
                self.dropped_indexes.append(definition)

            # Unique keys other than the primary keys (references, emails,
            # idempotency keys): their values arrive in no useful order, so
            # each row was a random descent into an index larger than the
            # server's cache. Rebuilt by one sort each, they are checked
            # just the same before the transaction commits. Those a
            # foreign key points at stay.
            cursor.execute(
                "SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, "
                "c.conname, pg_get_constraintdef(c.oid), "
                "pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid "
                "AND c.contype = 'u' "
                "WHERE i.indrelid::regclass::text = ANY(%s) "
                "AND i.indisunique AND NOT i.indisprimary AND NOT EXISTS ("
                "SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' "
                "AND f.conindid = i.indexrelid)",
                [names],
            )
            for table, index, constraint, condef, indexdef in cursor.fetchall():
                if constraint:
                    cursor.execute(
                        f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"'
                    )
                    self.dropped_uniques.append(
                        f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {condef}'
                    )
                else:
                    cursor.execute(f"DROP INDEX {index}")
                    self.dropped_uniques.append(indexdef)

    def copy(self, table: Table, text: str | bytes) -> None:
        sql = (
            f"COPY {table.model._meta.db_table} ({', '.join(table.columns)}) FROM STDIN"
        )
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(sql) as copy:
                copy.write(text)

    def write(self, table: Table, rows: list) -> None:
        self.copy(table, copy_text(table, rows, self.times))

    def finish(self, tables: list[Table]) -> None:
        """Restore keys and indexes, move each sequence past the ids written,
        and refresh the planner's statistics."""
        with connection.cursor() as cursor:
            # Memory for the sorts of the index builds and the joins that
            # validate the keys, for this transaction only (the defaults,
            # 64 MB and 4 MB, spill tens of millions of rows to disk).
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            cursor.execute("SET LOCAL work_mem = '256MB'")
            for definition in self.dropped_uniques + self.dropped_indexes:
                cursor.execute(definition)
            for table, name, definition in self.dropped_keys:
                cursor.execute(
                    f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
                )
            for loaded in tables:
                name = loaded.model._meta.db_table
                # The table names are the models' own, not input.
                sql = f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                sql += f"(SELECT max(id) FROM {name}))"  # noqa: S608
                cursor.execute(sql)
                cursor.execute(f"ANALYZE {name}")


class BulkWriter:
    """SQLite (development and tests): ``bulk_create`` in large batches."""

    def write(self, table: Table, rows: list) -> None:
        model = table.model
        times = [i for i, column in enumerate(table.columns) if column in table.times]
        objects = []
        for row in rows:
            for i in times:
                if row[i] is not None:
                    row[i] = datetime.fromtimestamp(row[i], UTC)
            objects.append(model(**dict(zip(table.columns, row, strict=True))))
        model.objects.bulk_create(objects, batch_size=5_000)

    def prepare(self, tables: list[Table]) -> None:
        pass

    def finish(self, tables: list[Table]) -> None:
        pass  # SQLite's AUTOINCREMENT moves past explicit ids by itself
