"""One seeding run: check, optionally wipe, load the finance data, hand over.

``seed_finance`` loads the generated platform (``plan``) and returns what
it wrote and planted; ``demo_data_exists`` and ``demo_data_wipe`` are what
the command's refusal and ``--reset`` rest on. The command
(finance/management/commands/seed_demo.py) then calls the other apps' demo
hooks and creates the staff logins.
"""

import gc
import multiprocessing
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from queue import Empty
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction

from finance.models import Account, Customer
from finance.seeding.plan import CURRENCIES, PROVIDER, Generator, Plants, Platform
from finance.seeding.tables import TABLES
from finance.seeding.writers import BulkWriter, CopyWriter, Times, copy_text
from finance.services.ledger import platform_account

# What --reset wipes: every row the seeder writes or that points at it
# (stuck cases, reconciliation results, override requests). Configuration
# (stuck rules, roles, severities) and people stay.
WIPED_APPS = ("finance", "sandbox", "reconciliation")
WIPED_MODELS = ("stuck.StuckCaseActivity", "stuck.StuckCase", "overrides")


@dataclass
class SeedResult:
    counts: dict[str, int]
    plants: Plants
    seconds: float
    customers: int = 0
    wallets: int = 0
    postings: int = 0
    by_table: dict[str, int] = field(default_factory=dict)


class SeedRefused(Exception):
    """Seeding would duplicate or break something; the message says what to do."""


def demo_data_exists() -> int:
    """How many customers there are (the seeder refuses to add to them)."""
    return Customer.objects.count()


def _wiped_models() -> list:
    labels = _app_labels()
    models = []
    for label in WIPED_APPS + WIPED_MODELS:
        app_label, _, model_name = label.partition(".")
        if app_label not in labels:
            continue  # an app this deployment does not install
        if model_name:
            models.append(apps.get_model(label))
        else:
            models.extend(apps.get_app_config(app_label).get_models())
    return models


def demo_data_wipe() -> int:
    """Delete every seeded row (``--reset``); returns the number of tables.

    On PostgreSQL the ledger is append-only (migration 0002 refuses UPDATE
    and DELETE); TRUNCATE fires no row triggers, and it is the statement an
    operator would use to empty a scratch or demo database on purpose.
    """
    if settings.PRODUCTION:
        raise SeedRefused("wiping demo data is refused in production")
    tables = [model._meta.db_table for model in _wiped_models()]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Deferred key checks still pending would make TRUNCATE fail.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            # SQLite checks its (deferred) foreign keys at commit, when
            # every table is empty.
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
    return len(tables)


def _platform() -> Platform:
    def ids(kind: str, provider: str = "") -> dict[str, int]:
        return {
            currency: platform_account(
                kind=kind, currency=currency, provider=provider
            ).pk
            for currency in CURRENCIES
        }

    return Platform(
        clearing=ids(Account.Kind.PROVIDER_CLEARING, PROVIDER),
        transit=ids(Account.Kind.PAYOUTS_IN_TRANSIT),
        fees=ids(Account.Kind.FEES),
    )


def _start_ids(tables) -> dict[str, int]:
    from django.db.models import Max

    return {
        table.key: (table.model.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
        for table in tables
    }


def seed_finance(
    *,
    seed: int,
    now: datetime,
    customers: int | None = None,
    postings: int | None = None,
    per_block: int = 5_000,
    progress: Callable[[str], None] | None = None,
) -> SeedResult:
    """Generate and load the platform: ``customers`` of them, or customers
    until ``postings`` postings exist. One database transaction: a failure
    leaves nothing behind."""
    if settings.PRODUCTION:
        raise SeedRefused("seeding demo data is refused in production")
    tables = [t for t in TABLES if t.label.split(".")[0] in _app_labels()]
    started = time.perf_counter()

    def report(counts: dict[str, int]) -> None:
        if progress is None:
            return
        elapsed = time.perf_counter() - started
        made = counts.get("posting", 0)
        rows = sum(counts.get(t.key, 0) for t in tables)
        progress(
            f"{counts.get('customer', 0):,} customers, "
            f"{counts.get('wallet', 0):,} wallets, {made:,} postings, "
            f"{rows:,} rows in {elapsed:.1f}s ({made / elapsed:,.0f} postings/s, "
            f"{rows / elapsed:,.0f} rows/s)"
        )

    with transaction.atomic():
        generator = Generator(
            seed=seed,
            now=int(now.timestamp()),
            platform=_platform(),
            start_ids=_start_ids(tables),
            settlement="sandbox" in _app_labels(),
        )
        blocks: dict[str, Any] = {
            "customers": customers,
            "postings": postings,
            "per_block": per_block,
        }
        writer: CopyWriter | BulkWriter
        if connection.vendor == "postgresql":
            writer = CopyWriter()
            with connection.cursor() as cursor:
                # Deferred key checks still pending (rows written earlier in
                # this transaction) would make ALTER TABLE fail.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            writer.prepare(tables)
            counts, plants = _load_in_pipeline(
                generator, blocks, tables, writer, report
            )
        else:
            writer = BulkWriter()
            for block in generator.blocks(**blocks):
                for table in tables:
                    if block.get(table.key):
                        writer.write(table, block[table.key])
                report(generator.counts)
            counts, plants = generator.counts, generator.plants
        writer.finish(tables)
    counts = {t.key: counts.get(t.key, 0) for t in tables}
    return SeedResult(
        counts=counts,
        plants=plants,
        seconds=time.perf_counter() - started,
        customers=counts["customer"],
        wallets=counts["wallet"],
        postings=counts["posting"],
    )


def _produce(queue, generator: Generator, blocks: dict, tables) -> None:
    """The child process: generate blocks and turn them into COPY text."""
    # The rows are millions of short-lived lists, freed by reference
    # counting; the cycle collector would walk them again and again for
    # nothing (it took about 40% of this process's time). The child makes
    # no cycles and exits at the end.
    gc.disable()
    try:
        times = Times()
        for block in generator.blocks(**blocks):
            # Bytes, ready for COPY: nothing for the parent to encode.
            texts = [
                (table.key, copy_text(table, block[table.key], times).encode())
                for table in tables
                if block.get(table.key)
            ]
            queue.put(("block", texts, dict(generator.counts)))
        queue.put(("done", generator.counts, generator.plants))
    except BaseException:
        queue.put(("error", traceback.format_exc(), None))


def _load_in_pipeline(generator, blocks, tables, writer, report):
    """Generate in a child process while this one COPYs, so that on two
    cores Python's row making and PostgreSQL's loading overlap. The queue
    holds a few blocks at most, so memory stays flat."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=4)
    child = context.Process(
        target=_produce, args=(queue, generator, blocks, tables), daemon=True
    )
    child.start()
    by_key = {table.key: table for table in tables}
    try:
        while True:
            try:
                kind, payload, extra = queue.get(timeout=5)
            except Empty:
                if not child.is_alive():
                    raise RuntimeError("the seeding generator died") from None
                continue
            if kind == "error":
                raise RuntimeError(f"the seeding generator failed:\n{payload}")
            if kind == "done":
                return payload, extra
            for key, text in payload:
                writer.copy(by_key[key], text)
            report(extra)
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()


def _app_labels() -> set[str]:
    return {config.label for config in apps.get_app_configs()}
