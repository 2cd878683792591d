"""Reconciliation: the daily report (daily.py) and the deep ledger scan (deep.py)."""
