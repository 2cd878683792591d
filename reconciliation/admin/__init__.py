"""Admin of the reconciliation app, one module per feature."""

from reconciliation.admin import daily, deep  # noqa: F401  (registers the models)
