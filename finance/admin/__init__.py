"""The finance admin, one module per area (registers every finance model)."""

from finance.admin import customers, ledger, operations, webhooks

__all__ = ["customers", "ledger", "operations", "webhooks"]
