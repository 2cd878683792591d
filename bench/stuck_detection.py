"""Benchmark: stuck detection over 1 million operations, of which 1% are stuck.

    .venv/bin/python bench/stuck_detection.py [--operations 1000000] [--keep]

Builds its own scratch database (``opsadmin_bench_stuck`` on the server that
DATABASE_URL names, default the local one), migrates it, loads the operations
with COPY and times, in the same run:

- bare: the SELECT of stuck candidates of every active rule, rows fetched
  (the indexed query detection relies on);
- detection, first run: every stuck item opens a case (inserts);
- detection, steady state: every case is seen again (updates), the run that
  repeats every few minutes in production;
- detection after 10% of the stuck items moved on (closing);
- the failed-webhook query with and without its partial index.

Rows are written straight into the finance tables with COPY: the scratch
database has no ledger behind its operations and is dropped at the end
(``--keep`` leaves it for EXPLAIN sessions).
"""

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCRATCH_DB = "opsadmin_bench_stuck"
BASE_URL = os.environ.get(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsadmin"
).rsplit("/", 1)[0]
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch DB")
    args = parser.parse_args()

    _recreate_database()
    os.environ["DATABASE_URL"] = f"{BASE_URL}/{SCRATCH_DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsadmin.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    plan = _seed(connection, args.operations)
    print(
        f"seeded {args.operations:,} operations ({plan['stuck']:,} stuck) and "
        f"{plan['deliveries']:,} webhook deliveries in "
        f"{time.perf_counter() - started:.1f} s"
    )
    try:
        _measure(connection, args.operations, plan)
    finally:
        connection.close()
        if not args.keep:
            _drop_database()


def _admin_connection():
    return psycopg.connect(f"{BASE_URL}/postgres", autocommit=True)


def _recreate_database():
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}"')
        conn.execute(f'CREATE DATABASE "{SCRATCH_DB}"')


def _drop_database():
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}"')


# --- seeding ---------------------------------------------------------------


def _ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def _history(rng) -> datetime:
    """A moment in the last 180 days, for operations long finished."""
    return NOW - timedelta(seconds=rng.randrange(3600, 180 * 86400))


def _seed(connection, operations: int) -> dict:
    """COPY customers, wallets and operations; return how many are stuck.

    Shares: 40% deposits, 29.5% payouts (each with its withdrawal), 0.5%
    withdrawals without a payout. 1% of all operations are stuck, spread
    over every default rule; 0.2% are waiting but not yet stuck.
    """
    rng = random.Random(42)
    stuck = operations // 100
    fresh = operations // 500
    deposits = operations * 40 // 100
    payouts = operations * 295 // 1000
    lone_withdrawals = operations - deposits - payouts * 2
    customers = max(operations // 100, 1)

    # Stuck items per rule, and waiting items not past their rule yet.
    stuck_deposits, stuck_requested = stuck * 40 // 100, stuck * 15 // 100
    stuck_created = stuck * 15 // 100
    stuck_processing = stuck - stuck_deposits - stuck_requested - stuck_created

    raw = connection.cursor().cursor  # psycopg cursor, for COPY
    with connection.cursor():
        _copy(
            raw,
            "finance_customer (id, reference, email, full_name, country, "
            "signed_up_at, is_blocked)",
            (
                (i, uuid.UUID(int=i), f"c{i}@bench.example", f"C {i}", "DE", NOW, False)
                for i in range(1, customers + 1)
            ),
        )
        _copy(
            raw,
            "finance_account (id, kind, currency, provider, name, created_at)",
            (
                (i, "wallet", "EUR", "", f"wallet {i}", NOW)
                for i in range(1, customers + 1)
            ),
        )
        _copy(
            raw,
            "finance_wallet (id, currency, balance, created_at, account_id, "
            "customer_id)",
            ((i, "EUR", 0, NOW, i, i) for i in range(1, customers + 1)),
        )

        def owner(i):
            return (i % customers) + 1

        def provider(i):
            return "slowbank" if i % 10 == 0 else "sandbox"

        def deposit_rows():
            for i in range(1, deposits + 1):
                if i <= stuck_deposits:
                    state, changed = "pending", _ago(minutes=rng.randrange(31, 5000))
                elif i <= stuck_deposits + fresh // 2:
                    state, changed = "pending", _ago(minutes=rng.randrange(0, 29))
                else:
                    state = "succeeded" if i % 20 else "failed"
                    changed = _history(rng)
                created = changed - timedelta(minutes=1)
                yield (
                    i, uuid.UUID(int=i), rng.randrange(100, 500_000), "EUR",
                    provider(i), f"dep-{i}", changed, 1, created, state,
                    owner(i), owner(i),
                )  # fmt: skip

        _copy(
            raw,
            "finance_deposit (id, reference, amount, currency, provider, "
            "provider_reference, state_changed_at, version, created_at, state, "
            "customer_id, wallet_id)",
            deposit_rows(),
        )

        # Payout i executes withdrawal i; withdrawals past the payouts have none.
        def payout_state(i):
            if i <= stuck_created:
                return "created", _ago(minutes=rng.randrange(16, 600)), None
            if i <= stuck_created + stuck_processing:
                # Half of them past the 24-hour payout SLA.
                hours = rng.randrange(7, 23) if i % 2 else rng.randrange(25, 96)
                return "processing", _ago(hours=hours), f"pay-{i}"
            if i <= stuck_created + stuck_processing + fresh // 2:
                return "processing", _ago(minutes=rng.randrange(0, 300)), f"pay-{i}"
            return ("paid" if i % 25 else "failed"), _history(rng), f"pay-{i}"

        payout_rows, withdrawal_rows = [], []
        for i in range(1, payouts + lone_withdrawals + 1):
            amount = rng.randrange(100, 200_000)
            if i <= payouts:
                state, changed, reference = payout_state(i)
                created = changed - timedelta(minutes=2)
                w_state = {"paid": "completed", "failed": "failed"}.get(
                    state, "processing"
                )
                payout_rows.append(
                    (
                        i, uuid.UUID(int=i), amount, "EUR", provider(i), reference,
                        changed, 1, created, f"payout-{i}", state, 1, "", None,
                        None, owner(i), owner(i), i,
                    )
                )  # fmt: skip
            else:
                j = i - payouts
                if j <= stuck_requested:
                    w_state, changed = "requested", _ago(minutes=rng.randrange(16, 900))
                elif j <= stuck_requested + fresh // 4:
                    w_state, changed = "requested", _ago(minutes=rng.randrange(0, 14))
                else:
                    w_state, changed = "cancelled", _history(rng)
                created = changed
            withdrawal_rows.append(
                (
                    i, uuid.UUID(int=10**9 + i), amount, "EUR", provider(i), None,
                    changed, 1, created, 0, "Bank ****0000", w_state, owner(i),
                    owner(i),
                )
            )  # fmt: skip
        _copy(
            raw,
            "finance_withdrawal (id, reference, amount, currency, provider, "
            "provider_reference, state_changed_at, version, created_at, fee, "
            "destination_label, state, customer_id, wallet_id)",
            withdrawal_rows,
        )
        _copy(
            raw,
            "finance_payout (id, reference, amount, currency, provider, "
            "provider_reference, state_changed_at, version, created_at, "
            "idempotency_key, state, attempt_count, last_error, submitted_at, "
            "settled_at, customer_id, wallet_id, withdrawal_id)",
            payout_rows,
        )

        # Webhook deliveries beside the operations: 0.1% failed and never
        # applied (stuck), as many failed and applied on a retry.
        delivery_count = operations // 5
        failed = delivery_count // 1000

        def deliveries():
            for i in range(1, delivery_count + 1):
                outcome = "failed" if i <= 2 * failed else "applied"
                yield (
                    i, "sandbox", _ago(minutes=rng.randrange(60, 30 * 1440)),
                    f"evt_{i}", "payout.paid", outcome,
                    500 if outcome == "failed" else 200, "", 5, None,
                )  # fmt: skip

        _copy(
            raw,
            "finance_webhookdelivery (id, provider, received_at, event_id, "
            "event_type, outcome, http_status, error, processing_ms, payload)",
            deliveries(),
        )
        _copy(
            raw,
            "finance_webhookevent (id, provider, event_id, event_type, applied_at)",
            (
                (i, "sandbox", f"evt_{i}", "payout.paid", NOW)
                for i in range(failed + 1, delivery_count + 1)
            ),
        )
        raw.execute("ANALYZE")
    return {"stuck": stuck + failed, "deliveries": delivery_count}


def _copy(raw, target: str, rows) -> None:
    with raw.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# --- measuring -------------------------------------------------------------


def _timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds over ``repeat`` calls, and the last call's answer."""
    times, answer = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def _measure(connection, operations: int, plan: dict) -> None:
    from stuck.models import StuckCase
    from stuck.selectors import active_rules, candidate_queries
    from stuck.services import stuck_detect

    queries = candidate_queries(rules=active_rules(), now=NOW)

    def bare():
        rows = 0
        with connection.cursor() as cursor:
            for query in queries:
                cursor.execute(query.sql, query.params)
                rows += len(cursor.fetchall())
        return rows

    def truncate_cases():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE stuck_stuckcase CASCADE")

    def first_run():
        truncate_cases()
        started = time.perf_counter()
        result = stuck_detect(now=NOW)
        return time.perf_counter() - started, result

    bare_s, bare_rows = _timed(bare, repeat=5)
    firsts = [first_run() for _ in range(3)]
    first_s = statistics.median(seconds for seconds, _ in firsts)
    first = firsts[-1][1]
    steady_s, steady = _timed(lambda: stuck_detect(now=NOW), repeat=5)

    # Move a tenth of the stuck deposits on, as their webhooks would.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE finance_deposit SET state = 'succeeded' "
            "WHERE id IN (SELECT item_id FROM stuck_stuckcase "
            "WHERE item_kind = 'deposit' AND id % 10 = 0)"
        )
    closing_s, closing = _timed(lambda: stuck_detect(now=NOW), repeat=1)
    assert StuckCase.objects.filter(closed_at__isnull=True).count() == (
        closing.open_cases
    )

    webhook = next(q for q in queries if q.rule.item_kind == "webhook_delivery")
    with_index_s, _ = _timed(lambda: _fetch(connection, webhook), repeat=5)
    without_index_s = _without_index(
        connection, "delivery_failed_age", lambda: _fetch(connection, webhook)
    )

    print(f"\nrules: {len(queries)}; stuck items found: {bare_rows:,}")
    assert first.opened == bare_rows == plan["stuck"], (first, bare_rows, plan)
    _row("bare candidate SELECTs (all rules)", bare_s, bare_rows, operations)
    _row("detection, first run (opens)", first_s, first.opened, operations)
    _row("detection, steady state (updates)", steady_s, steady.open_cases, operations)
    closing_label = f"detection, {closing.closed:,} closing"
    _row(closing_label, closing_s, closing.open_cases, operations)
    print(f"\nratio steady detection / bare SELECTs: {steady_s / bare_s:.1f}x")
    print(f"ratio first detection / bare SELECTs:  {first_s / bare_s:.1f}x")
    print(
        f"failed-webhook SELECT: {with_index_s * 1000:.1f} ms with the partial "
        f"index, {without_index_s * 1000:.1f} ms without "
        f"({without_index_s / with_index_s:.0f}x)"
    )
    for query in queries:
        print(f"  plan {query.rule.name}: {_plan(connection, query)}")


def _fetch(connection, query) -> int:
    with connection.cursor() as cursor:
        cursor.execute(query.sql, query.params)
        return len(cursor.fetchall())


def _without_index(connection, index: str, fn) -> float:
    from django.db import transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX "{index}"')
        seconds, _ = _timed(fn, repeat=3)
        transaction.set_rollback(True)
    return seconds


def _plan(connection, query) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + query.sql, query.params)
        lines = [row[0].strip() for row in cursor.fetchall()]
    scans = [line for line in lines if "Scan" in line]
    return "; ".join(line.split("  (")[0].lstrip("-> ") for line in scans)


def _row(label: str, seconds: float, items: int, operations: int) -> None:
    print(
        f"{label:<38} {seconds * 1000:>9.1f} ms  {items:>8,} items  "
        f"{items / seconds:>10,.0f} items/s  {operations / seconds:>12,.0f} "
        f"operations covered/s"
    )


if __name__ == "__main__":
    main()
