"""Admin pieces that every app shares (the site itself is admin_site.py)."""

from django.contrib import admin


class ReadOnlyMixin:
    """Nobody adds, changes or deletes these rows here, superusers included.

    For records that only a service writes (ledger rows, runs, audit
    entries, scan results): the view permission still shows them, and a
    correction goes through the service that owns them. Works on model
    admins and inlines alike.
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # Every built-in action changes or deletes; a subclass may name its own.
    actions: list | None = None
