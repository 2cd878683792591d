"""Seeding speed: ``seed_demo`` at two sizes beside a bare COPY of postings.

Usage (DATABASE_URL names the PostgreSQL server; the benchmark creates and
drops its own scratch database on it):

    python bench/seed.py                          # 1M and 10M postings
    python bench/seed.py --sizes 1000000          # one size
    python bench/seed.py --keep                   # leave the last database
    python bench/seed.py --database opsadmin_bench_mine   # another scratch name

For each size, in a freshly migrated scratch database, it runs the
seeder's real path (``finance.seeding.run.seed_finance``: generation in a
child process, COPY per table and block, keys and indexes rebuilt, the
ledger's triggers on) and, in the same run, the baseline: COPY of the same
number of posting rows, generated before the clock starts, into a bare
table shaped like finance_posting with no index, key or trigger. It prints
postings/s for both, the ratio, and how the rate changes with size.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = "opsadmin_bench_seed"
BASELINE_CHUNK = 1_000_000  # rows of text generated once, COPYed repeatedly


def _url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path="/" + name))


def recreate_database(base: str, name: str) -> None:
    with psycopg.connect(_url(base, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(base: str, name: str) -> None:
    with psycopg.connect(_url(base, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def baseline(url: str, postings: int) -> float:
    """Seconds to COPY ``postings`` pre-generated rows into a bare table."""
    chunk = "".join(
        f"{n}\t{n // 2}\t{n % 1000}\t{(n % 97 + 1) * (1 if n % 2 else -1)}\tEUR\t"
        "2026-12-01 12:00:00+00\n"
        for n in range(1, BASELINE_CHUNK + 1)
    )
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bare_posting")
        cur.execute(
            "CREATE TABLE bare_posting (id bigint, transaction_id bigint, "
            "account_id bigint, amount bigint, currency varchar(3), "
            "created_at timestamptz)"
        )
        started = time.perf_counter()
        left = postings
        while left > 0:
            rows = min(left, BASELINE_CHUNK)
            text = chunk if rows == BASELINE_CHUNK else _head(chunk, rows)
            with cur.copy("COPY bare_posting FROM STDIN") as copy:
                copy.write(text)
            left -= rows
        elapsed = time.perf_counter() - started
        cur.execute("DROP TABLE bare_posting")
    return elapsed


def _head(text: str, lines: int) -> str:
    end = 0
    for _ in range(lines):
        end = text.index("\n", end) + 1
    return text[:end]


def run_size(base_url: str, name: str, postings: int) -> dict:
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    connections.close_all()
    recreate_database(base_url, name)
    call_command("migrate", verbosity=0)
    from finance.seeding.run import seed_finance

    def progress(line: str) -> None:
        print("  " + line, flush=True)

    result = seed_finance(
        seed=1, now=timezone.now(), postings=postings, progress=progress
    )
    connections.close_all()
    bare = baseline(_url(base_url, name), result.postings)
    return {
        "postings": result.postings,
        "wallets": result.wallets,
        "rows": sum(result.counts.values()),
        "seconds": result.seconds,
        "bare": bare,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--database",
        default=SCRATCH,
        help="the scratch database's name (dropped and created; default %(default)s)",
    )
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        print("DATABASE_URL must name a PostgreSQL server", file=sys.stderr)
        return 2
    name = args.database
    os.environ["DATABASE_URL"] = _url(base_url, name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsadmin.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    recreate_database(base_url, name)
    import django

    django.setup()
    from django.db import connections

    figures = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            print(f"== seeding {size:,} postings", flush=True)
            f = run_size(base_url, name, size)
            figures.append(f)
            rate = f["postings"] / f["seconds"]
            bare_rate = f["postings"] / f["bare"]
            print(
                f"seed_demo: {f['postings']:,} postings ({f['rows']:,} rows, "
                f"{f['wallets']:,} wallets) in {f['seconds']:.1f}s: "
                f"{rate:,.0f} postings/s, {f['rows'] / f['seconds']:,.0f} rows/s\n"
                f"bare COPY of as many posting rows: {f['bare']:.1f}s: "
                f"{bare_rate:,.0f} postings/s\n"
                f"ratio seed_demo / bare: x{f['seconds'] / f['bare']:.1f} the time",
                flush=True,
            )
        if len(figures) > 1:
            first, last = figures[0], figures[-1]
            growth = (last["postings"] / last["seconds"]) / (
                first["postings"] / first["seconds"]
            )
            print(
                f"rate at {last['postings']:,} / rate at {first['postings']:,}: "
                f"x{growth:.2f} (1.00 = linear growth of time with size)"
            )
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(base_url, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
