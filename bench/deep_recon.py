"""Deep reconciliation at scale: the wallet-balance check beside bare SQL.

Usage (PostgreSQL must be reachable; DATABASE_URL names the server, the
benchmark creates and drops its own scratch database on it):

    python bench/deep_recon.py                      # 1M and 10M postings
    python bench/deep_recon.py --sizes 1000000      # one size
    python bench/deep_recon.py --keep               # leave the last database

For each size it COPYs a ledger of that many postings (about ten per
wallet: deposits, and withdrawals paid out for two wallets in five) with
planted wallet-balance mismatches, runs VACUUM ANALYZE, then measures in
the same run:

- reference: the sorted aggregate over the covering index
  posting_account_amount (index-only scan, ``enable_hashagg = off``)
  computing every account's sum: the fastest bare query for the job;
- planner default: the same query as the planner plans it;
- Python loop: one query per wallet summing its postings in Python, on a
  sample of wallets, extrapolated per posting;
- the scan's wallet-balance check (deep_reconcile_run, checks=wallets),
  in one process and with two worker threads;
- the full scan (every check), for the record.

It prints rates and ratios, checks that exactly the planted mismatches were
found, and reports the peak RSS of this process (resource.getrusage).
"""

import argparse
import itertools
import multiprocessing
import os
import random
import resource
import sys
import time
from array import array
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = "opsadmin_bench_deeprecon"
CHUNK = 20_000  # rows per COPY write, so memory stays flat while seeding
NOW = "2025-01-01 00:00:00+00"
DEPOSITS_PER_WALLET = 4
PLANTED = 100


def _scratch_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + name))


def _admin_connect(base: str):
    return psycopg.connect(_scratch_url(base, "postgres"), autocommit=True)


def recreate_database(base: str) -> None:
    with _admin_connect(base) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{SCRATCH}"')


def drop_database(base: str) -> None:
    with _admin_connect(base) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


def rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- seeding ----------------------------------------------------------------


class Ledger:
    """Ids and counts of a generated ledger of ``wallets`` wallets.

    Accounts 1..3 are the platform's (provider clearing, payouts in transit,
    fees, all EUR); wallet n (1-based) has account n + 3. Deposits come in
    rounds over all wallets, so each account's postings are spread over the
    table as they would be in time. Wallets with n % 5 in (1, 2) then make
    one withdrawal with a fee, paid out.
    """

    CLEARING, TRANSIT, FEES = 1, 2, 3

    def __init__(self, wallets: int):
        self.wallets = wallets
        self.deposits = wallets * DEPOSITS_PER_WALLET
        self.withdrawers = [n for n in range(1, wallets + 1) if n % 5 in (1, 2)]
        self.withdrawals = len(self.withdrawers)
        self.postings = self.deposits * 2 + self.withdrawals * 5

    def account(self, wallet: int) -> int:
        return wallet + 3

    @staticmethod
    def deposit_amount(deposit: int) -> int:
        return 100 + (deposit * 7919) % 9_900

    @staticmethod
    def withdrawal_amount(wallet: int) -> int:
        return 50 + (wallet * 104_729) % 300  # always below one deposit


def _copy(cursor, table: str, columns: str, rows) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = []
        for row in rows:
            buffer.append(row)
            if len(buffer) >= CHUNK:
                copy.write("".join(buffer))
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))


def _uuid(n: int, kind: int) -> str:
    return f"00000000-0000-4000-8{kind:03x}-{n:012x}"


def seed(url: str, ledger: Ledger, planted: dict[int, int]) -> None:
    """COPY the ledger in; ``planted`` maps wallet -> error added to its balance."""
    w = ledger.wallets
    balances = array("q", bytes(8 * (w + 1)))
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        # A scratch database: skip triggers and foreign-key checks while
        # loading, and build the posting indexes once at the end.
        cur.execute("SET session_replication_role = replica")
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename IN ('finance_posting', 'finance_ledgertransaction') "
            "AND indexname NOT LIKE '%%pkey' AND indexname NOT LIKE '%%_key'"
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')

        _copy(
            cur,
            "finance_customer",
            "id, reference, email, full_name, country, signed_up_at, is_blocked",
            (
                f"{n}\t{_uuid(n, 1)}\tc{n}@bench.example\tCustomer {n}\tDE\t{NOW}\tf\n"
                for n in range(1, w + 1)
            ),
        )
        platform = [
            f"{ledger.CLEARING}\tprovider_clearing\tEUR\tsandbox\tclearing\t{NOW}\n",
            f"{ledger.TRANSIT}\tpayouts_in_transit\tEUR\t\ttransit\t{NOW}\n",
            f"{ledger.FEES}\tfees\tEUR\t\tfees\t{NOW}\n",
        ]
        _copy(
            cur,
            "finance_account",
            "id, kind, currency, provider, name, created_at",
            itertools.chain(
                platform,
                (
                    f"{ledger.account(n)}\twallet\tEUR\t\twallet {n}\t{NOW}\n"
                    for n in range(1, w + 1)
                ),
            ),
        )

        # Deposits, round by round; transaction id = deposit id.
        def deposits():
            for d in range(1, ledger.deposits + 1):
                n = (d - 1) % w + 1
                yield (
                    f"{d}\t{_uuid(d, 2)}\t{ledger.deposit_amount(d)}\tEUR\tsandbox\t"
                    f"\\N\t{NOW}\t2\t{NOW}\tsucceeded\t{n}\t{n}\n"
                )

        _copy(
            cur,
            "finance_deposit",
            "id, reference, amount, currency, provider, provider_reference, "
            "state_changed_at, version, created_at, state, customer_id, wallet_id",
            deposits(),
        )
        fee = 25
        _copy(
            cur,
            "finance_withdrawal",
            "id, reference, amount, currency, provider, state_changed_at, version, "
            "created_at, fee, destination_label, state, customer_id, wallet_id",
            (
                f"{i}\t{_uuid(i, 3)}\t{ledger.withdrawal_amount(n)}\tEUR\tsandbox\t"
                f"{NOW}\t3\t{NOW}\t{fee}\tBank ****0001\tcompleted\t{n}\t{n}\n"
                for i, n in enumerate(ledger.withdrawers, start=1)
            ),
        )
        _copy(
            cur,
            "finance_payout",
            "id, reference, amount, currency, provider, state_changed_at, version, "
            "created_at, idempotency_key, state, attempt_count, last_error, "
            "customer_id, wallet_id, withdrawal_id",
            (
                f"{i}\t{_uuid(i, 4)}\t{ledger.withdrawal_amount(n)}\tEUR\tsandbox\t"
                f"{NOW}\t3\t{NOW}\tpayout-{i}\tpaid\t1\t\t{n}\t{n}\t{i}\n"
                for i, n in enumerate(ledger.withdrawers, start=1)
            ),
        )

        holds = ledger.deposits
        paids = ledger.deposits + ledger.withdrawals

        def transactions():
            for d in range(1, ledger.deposits + 1):
                yield (
                    f"{d}\tdeposit:{d}:credit\tdeposit_credit\tdeposit\t{d}\t\t{NOW}\n"
                )
            for i in range(1, ledger.withdrawals + 1):
                yield (
                    f"{holds + i}\twithdrawal:{i}:hold\twithdrawal_hold\twithdrawal"
                    f"\t{i}\t\t{NOW}\n"
                )
            for i in range(1, ledger.withdrawals + 1):
                yield (
                    f"{paids + i}\tpayout:{i}:paid\tpayout_paid\tpayout\t{i}\t\t{NOW}\n"
                )

        _copy(
            cur,
            "finance_ledgertransaction",
            "id, idempotency_key, kind, operation_kind, operation_id, memo, created_at",
            transactions(),
        )

        def postings():
            pid = 0
            for d in range(1, ledger.deposits + 1):
                n = (d - 1) % w + 1
                amount = ledger.deposit_amount(d)
                balances[n] += amount
                pid += 2
                yield (
                    f"{pid - 1}\t{d}\t{ledger.CLEARING}\t{-amount}\tEUR\t{NOW}\n"
                    f"{pid}\t{d}\t{ledger.account(n)}\t{amount}\tEUR\t{NOW}\n"
                )
            for i, n in enumerate(ledger.withdrawers, start=1):
                amount = ledger.withdrawal_amount(n)
                balances[n] -= amount + fee
                pid += 3
                yield (
                    f"{pid - 2}\t{holds + i}\t{ledger.account(n)}\t{-(amount + fee)}"
                    f"\tEUR\t{NOW}\n"
                    f"{pid - 1}\t{holds + i}\t{ledger.TRANSIT}\t{amount}\tEUR\t{NOW}\n"
                    f"{pid}\t{holds + i}\t{ledger.FEES}\t{fee}\tEUR\t{NOW}\n"
                )
            for i, n in enumerate(ledger.withdrawers, start=1):
                amount = ledger.withdrawal_amount(n)
                pid += 2
                yield (
                    f"{pid - 1}\t{paids + i}\t{ledger.TRANSIT}\t{-amount}\tEUR\t{NOW}\n"
                    f"{pid}\t{paids + i}\t{ledger.CLEARING}\t{amount}\tEUR\t{NOW}\n"
                )

        _copy(
            cur,
            "finance_posting",
            "id, transaction_id, account_id, amount, currency, created_at",
            postings(),
        )
        _copy(
            cur,
            "finance_wallet",
            "id, currency, balance, created_at, account_id, customer_id",
            (
                f"{n}\tEUR\t{balances[n] + planted.get(n, 0)}\t{NOW}\t"
                f"{ledger.account(n)}\t{n}\n"
                for n in range(1, w + 1)
            ),
        )

        for _, definition in indexes:
            cur.execute(definition)
        for table in (
            "finance_customer",
            "finance_account",
            "finance_wallet",
            "finance_deposit",
            "finance_withdrawal",
            "finance_payout",
            "finance_ledgertransaction",
            "finance_posting",
        ):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("VACUUM ANALYZE")


def plant(wallets: int, count: int) -> dict[int, int]:
    rng = random.Random(wallets)
    chosen = rng.sample(range(1, wallets + 1), count)
    return {n: rng.choice([-1, 1]) * rng.randint(1, 50_000) for n in chosen}


# --- measuring ----------------------------------------------------------------

_SUMS = (
    "SELECT count(*), sum(total) FROM ("
    "SELECT account_id, sum(amount) AS total FROM finance_posting "
    "GROUP BY account_id) AS sums"
)


_WALLET_SUMS = (
    "SELECT count(*), sum(total) FROM ("
    "SELECT account_id, sum(amount) AS total FROM finance_posting "
    "WHERE account_id > 3 GROUP BY account_id) AS sums"
)


def _best_of(times: int, measure):
    best = None
    for _ in range(times):
        started = time.perf_counter()
        result = measure()
        elapsed = time.perf_counter() - started
        if best is None or elapsed < best[0]:
            best = (elapsed, result)
    return best


def _plan_nodes(cur, query: str) -> str:
    """The plan's node types from the top, e.g. "Aggregate > GroupAggregate"."""
    cur.execute("EXPLAIN (FORMAT JSON) " + query)
    node = cur.fetchone()[0][0]["Plan"]
    names = []
    while node:
        name = node["Node Type"]
        if name == "Aggregate" and node.get("Strategy") == "Sorted":
            name = "GroupAggregate"
        elif name == "Aggregate" and node.get("Strategy") == "Hashed":
            name = "HashAggregate"
        names.append(name)
        node = (node.get("Plans") or [None])[0]
    return " > ".join(names)


def measure_sql(url: str) -> dict:
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        # The reference needs the covering index; the schema has it, but
        # the benchmark must stand on its own should that ever change.
        cur.execute(
            "CREATE INDEX IF NOT EXISTS posting_account_amount "
            "ON finance_posting (account_id) INCLUDE (amount)"
        )
        cur.execute("SELECT count(*) FROM finance_posting")
        postings = cur.fetchone()[0]

        def run():
            cur.execute(_SUMS)
            return cur.fetchone()

        default_plan = _plan_nodes(cur, _SUMS)
        default = _best_of(2, run)
        cur.execute("SET enable_hashagg = off")
        reference_plan = _plan_nodes(cur, _SUMS)
        reference = _best_of(2, run)

        # The same aggregate over the rows the wallet check reads: the
        # postings of wallet accounts (platform accounts are 1 to 3).
        def run_wallets():
            cur.execute(_WALLET_SUMS)
            return cur.fetchone()

        cur.execute("SELECT count(*) FROM finance_posting WHERE account_id > 3")
        wallet_postings = cur.fetchone()[0]
        wallet_reference = _best_of(2, run_wallets)
        cur.execute("RESET enable_hashagg")

        from reconciliation.checks import wallet_check_plan

        cur.execute("BEGIN")
        scan_plan = wallet_check_plan(cur, lo=4, hi=4 + 62_500)
        cur.execute("ROLLBACK")
    return {
        "scan_plan": " > ".join(scan_plan),
        "wallet_postings": wallet_postings,
        "wallet_reference": wallet_reference[0],
        "postings": postings,
        "reference": reference[0],
        "reference_plan": reference_plan,
        "default": default[0],
        "default_plan": default_plan,
    }


def measure_python_loop(url: str, ledger: Ledger, sample: int) -> dict:
    """One query per wallet, summed in Python: what the scan must not be."""
    rng = random.Random(7)
    wallets = rng.sample(range(1, ledger.wallets + 1), min(sample, ledger.wallets))
    rows = 0
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        for n in wallets:
            cur.execute("SELECT balance FROM finance_wallet WHERE id = %s", [n])
            balance = cur.fetchone()[0]
            cur.execute(
                "SELECT amount FROM finance_posting WHERE account_id = %s",
                [ledger.account(n)],
            )
            amounts = [amount for (amount,) in cur.fetchall()]
            rows += len(amounts)
            _ = sum(amounts) == balance
        elapsed = time.perf_counter() - started
    return {"wallets": len(wallets), "postings": rows, "seconds": elapsed}


def measure_scan(
    checks: list[str], parallel: int, ranges: int | None = None
) -> tuple[float, object]:
    from reconciliation.services.deep import deep_reconcile_run

    started = time.perf_counter()
    # A dry run: the findings are recorded, tickets are not the check.
    result = deep_reconcile_run(
        checks=checks,
        ranges=ranges,
        via="bench",
        parallel=parallel,
        workers="threads",
        settle_tickets=False,
    )
    return time.perf_counter() - started, result


def verify_wallet_findings(scan_id: int, planted: dict[int, int]) -> tuple[int, int]:
    """(planted found, findings that were not planted)."""
    from reconciliation.models import Finding, Invariant

    found = dict(
        Finding.objects.filter(
            scan_id=scan_id, invariant=Invariant.WALLET_BALANCE
        ).values_list("wallet_id", "difference")
    )
    hits = sum(1 for n, error in planted.items() if found.get(n) == error)
    false = sum(1 for n in found if n not in planted)
    return hits, false


def run_size(base_url: str, postings_wanted: int, loop_sample: int) -> dict:
    from django.db import connections

    wallets = max(10, postings_wanted // 10)
    ledger = Ledger(wallets)
    planted = plant(wallets, min(PLANTED, wallets // 10))
    url = _scratch_url(base_url, SCRATCH)

    connections.close_all()
    recreate_database(base_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # Seeded by a child process, so that the peak RSS measured here is the
    # scan's, not the generator's.
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=seed, args=(url, ledger, planted)
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit("seeding failed")
    seeded = time.perf_counter() - started
    print(
        f"seeded {ledger.postings:,} postings over {wallets:,} wallets "
        f"in {seeded:.0f}s (COPY, VACUUM ANALYZE; seeder peak RSS "
        f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB)",
        flush=True,
    )

    sql_figures = measure_sql(url)
    loop = measure_python_loop(url, ledger, loop_sample)
    wallet_one, result_one = measure_scan(["wallets"], parallel=1)
    wallet_big, result_big = measure_scan(["wallets"], parallel=1, ranges=4)
    wallet_two, result_two = measure_scan(["wallets"], parallel=2)
    full, result_full = measure_scan(
        ["wallets", "journal", "deposits", "withdrawals", "payouts", "platform"],
        parallel=1,
    )
    hits_one, false_one = verify_wallet_findings(result_one.scan_id, planted)
    hits_two, false_two = verify_wallet_findings(result_two.scan_id, planted)
    hits_big, false_big = verify_wallet_findings(result_big.scan_id, planted)
    hits_full, _ = verify_wallet_findings(result_full.scan_id, planted)
    return {
        "ledger": ledger,
        "planted": len(planted),
        **sql_figures,
        "loop": loop,
        "wallet_one": wallet_one,
        "wallet_two": wallet_two,
        "wallet_big": wallet_big,
        "found_big": (hits_big, false_big),
        "ranges_one": result_one.ranges_total,
        "full": full,
        "found_one": (hits_one, false_one),
        "found_two": (hits_two, false_two),
        "found_full": (hits_full, result_full.findings - hits_full),
        "rows_one": result_one.rows_scanned,
        "full_by_check": per_check(result_full.scan_id),
    }


def per_check(scan_id: int) -> str:
    """Seconds and rows of each check in a scan, summed over its ranges."""
    from django.db.models import Sum

    from reconciliation.models import ScanRange

    rows = (
        ScanRange.objects.filter(scan_id=scan_id)
        .values("kind")
        .annotate(ms=Sum("duration_ms"), rows=Sum("rows_scanned"))
        .order_by("kind")
    )
    return ", ".join(
        f"{row['kind']} {row['ms'] / 1000:.1f}s/{row['rows'] / 1e6:.1f}M rows"
        for row in rows
    )


def report(figures: dict) -> None:
    ledger = figures["ledger"]
    n = figures["postings"]
    ref = figures["reference"]
    loop = figures["loop"]
    loop_rate = loop["postings"] / loop["seconds"] if loop["seconds"] else 0
    lines = [
        f"== {n:,} postings, {ledger.wallets:,} wallets, "
        f"{figures['planted']} planted mismatches",
        f"reference (sorted aggregate, index-only): {ref:6.2f}s  "
        f"{n / ref / 1e6:5.2f}M postings/s   [{figures['reference_plan']}]",
        f"reference over wallet accounts only:      "
        f"{figures['wallet_reference']:6.2f}s  "
        f"({figures['wallet_postings']:,} postings; the rows the wallet check reads)",
        f"the scan's wallet range query:            [{figures['scan_plan']}]",
        f"planner default:                          {figures['default']:6.2f}s  "
        f"{n / figures['default'] / 1e6:5.2f}M postings/s  "
        f"x{figures['default'] / ref:.1f}   [{figures['default_plan']}]",
        f"python loop ({loop['wallets']:,} wallets, {loop['postings']:,} postings): "
        f"{loop_rate / 1e6:7.3f}M postings/s  x{(n / ref) / loop_rate:.0f} slower",
        f"scan, wallet check, 1 worker, {figures['ranges_one']:2} ranges:  "
        f"{figures['wallet_one']:6.2f}s  "
        f"x{figures['wallet_one'] / ref:.2f} of reference "
        f"(x{figures['wallet_one'] / figures['wallet_reference']:.2f} same rows)  "
        f"found {figures['found_one'][0]}/{figures['planted']}, "
        f"false {figures['found_one'][1]}",
        f"scan, wallet check, 1 worker, 4 ranges:   {figures['wallet_big']:6.2f}s  "
        f"x{figures['wallet_big'] / ref:.2f} of reference "
        f"(x{figures['wallet_big'] / figures['wallet_reference']:.2f} same rows)  "
        f"found {figures['found_big'][0]}/{figures['planted']}, "
        f"false {figures['found_big'][1]}",
        f"scan, wallet check, 2 workers:            {figures['wallet_two']:6.2f}s  "
        f"x{figures['wallet_two'] / ref:.2f} of reference "
        f"(x{figures['wallet_two'] / figures['wallet_reference']:.2f} same rows)  "
        f"found {figures['found_two'][0]}/{figures['planted']}, "
        f"false {figures['found_two'][1]}",
        f"scan, every check, 1 worker:              {figures['full']:6.2f}s  "
        f"found {figures['found_full'][0]}/{figures['planted']}, "
        f"other findings {figures['found_full'][1]}",
        f"  by check: {figures['full_by_check']}",
        f"peak RSS so far: {rss_mb():.0f} MB",
    ]
    print("\n".join(lines), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--loop-sample", type=int, default=5_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x")
    if not base_url.startswith("postgres"):
        print("DATABASE_URL must name a PostgreSQL server", file=sys.stderr)
        return 2
    os.environ["DATABASE_URL"] = _scratch_url(base_url, SCRATCH)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsadmin.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    recreate_database(base_url)
    import django

    django.setup()
    from django.db import connections

    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            report(run_size(base_url, size, args.loop_sample))
        print(f"peak RSS of this process: {rss_mb():.0f} MB (limit 300 MB)")
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(base_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
