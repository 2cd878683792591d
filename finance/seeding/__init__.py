"""Seeding a demo or benchmark platform (``manage.py seed_demo``).

- ``plan``: the deterministic generator (what a customer gets, the planted
  inconsistencies);
- ``tables``: the tables it fills, in foreign-key order;
- ``writers``: COPY on PostgreSQL, bulk inserts on SQLite;
- ``run``: one seeding run: refuse or reset, load, report progress, then
  stuck detection and every app's demo hook.
"""
