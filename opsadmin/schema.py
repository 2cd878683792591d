"""Schema operations for migrations that run against the live database.

The platform is in production: a plain ``CREATE INDEX`` holds a lock that
blocks every write to the table until the index is built, minutes on the
big finance tables. ``AddIndexOnline`` builds it with ``CONCURRENTLY`` on
PostgreSQL, where writes go on meanwhile, and plainly elsewhere (the SQLite
demo has nothing to block). A migration using it sets ``atomic = False``:
PostgreSQL refuses a concurrent build inside a transaction. If such a build
fails it leaves an invalid index behind; drop it before migrating again.
"""

from django.contrib.postgres.operations import AddIndexConcurrently


class AddIndexOnline(AddIndexConcurrently):
    def describe(self):
        return f"Create index {self.index.name} on {self.model_name} (online)"

    def _operation(self, schema_editor):
        """CONCURRENTLY on PostgreSQL; elsewhere the plain AddIndex, which
        follows AddIndexConcurrently in the method resolution order."""
        if schema_editor.connection.vendor == "postgresql":
            return super()
        return super(AddIndexConcurrently, self)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._operation(schema_editor).database_forwards(
            app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._operation(schema_editor).database_backwards(
            app_label, schema_editor, from_state, to_state
        )
