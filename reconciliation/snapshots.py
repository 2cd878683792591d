"""Read the database as of one instant while the platform keeps writing.

A deep scan runs many range queries, in one process or in several. Every
one of them reads through a ``SnapshotReader``: a private connection (not
the thread's Django connection, which keeps recording progress in
autocommit) holding a REPEATABLE READ, READ ONLY transaction.

1. The coordinator opens its reader and exports the transaction's snapshot
   with ``pg_export_snapshot()``; the scan row carries the snapshot id.
2. A worker opens its own reader and imports that id with
   ``SET TRANSACTION SNAPSHOT`` as the first statement of its transaction.
   It then sees exactly what the coordinator sees: every transaction
   committed before the export and nothing committed after, however long
   the scan takes.
3. The coordinator keeps its transaction open until no range is running,
   because a snapshot can only be imported while its exporter is open. If
   the coordinator dies the import fails (``SnapshotGone``) and the worker
   stops; a resumed scan exports a new snapshot for the ranges still to do.
4. finance.services.ledger writes a transaction's postings and the wallet
   balances they move in one database transaction, and an operation's
   state with its postings, so any snapshot holds both sides or neither.
   That is why a posting committed during the scan can never show up as
   a mismatch.

With a replica alias the export and the imports all happen on the replica
(PostgreSQL exports snapshots on a hot standby since version 10). The alias
must name one server, not a pool: a snapshot id means nothing on another
server. A long scan on a standby needs ``hot_standby_feedback = on`` (or a
large ``max_standby_streaming_delay``), or recovery may cancel it.
"""

import re

import psycopg
from django.db import connections


class SnapshotGone(Exception):
    """The exporting transaction has ended; its snapshot can't be imported."""


_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?$")


class SnapshotReader:
    """A private connection to ``alias`` in a REPEATABLE READ snapshot."""

    def __init__(self, alias: str):
        self.alias = alias
        self.connection = connections.create_connection(alias)
        self.in_transaction = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def begin(self, *, snapshot_id: str = "") -> None:
        """Start the read transaction, in ``snapshot_id`` when given."""
        cursor = self.cursor()
        # Django keeps its connections in autocommit; the explicit BEGIN
        # makes this one connection transactional until end().
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self.in_transaction = True
        if not snapshot_id:
            return
        if not _SNAPSHOT_ID.match(snapshot_id):
            raise ValueError(f"not a snapshot id: {snapshot_id!r}")
        try:
            # Utility statements take no bind parameters; the id was checked.
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
        except psycopg.errors.InvalidParameterValue as exc:
            self.end()
            raise SnapshotGone(snapshot_id) from exc
        except Exception as exc:
            if "invalid snapshot identifier" not in str(exc):
                raise
            self.end()
            raise SnapshotGone(snapshot_id) from exc

    def export(self) -> str:
        cursor = self.cursor()
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]

    def cursor(self):
        self.connection.ensure_connection()
        return self.connection.connection.cursor()

    def end(self) -> None:
        if self.in_transaction:
            self.in_transaction = False
            self.connection.connection.execute("ROLLBACK")

    def close(self) -> None:
        try:
            if self.connection.connection is not None:
                self.end()
        finally:
            self.connection.close()
