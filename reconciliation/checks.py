"""The invariants of docs/architecture.md as set-based range queries.

Each check runs as one aggregate query over one range of ids, inside the
caller's snapshot (reconciliation/snapshots.py), and returns only what it
found wrong plus how many rows it read; no row of the ledger is loaded
into Python. Every invariant is decided inside a single range (a wallet and
its account's postings, a transaction and its postings, an operation and the
transactions claiming it), so ranges can run in any order, in any process.

| check        | ranges over                     | invariants                     |
|--------------|---------------------------------|--------------------------------|
| wallets      | wallet account ids              | wallet_balance                 |
| journal      | transaction ids (of postings)   | transaction_balanced,          |
|              |                                 | posting_currency,              |
|              |                                 | posting_account,               |
|              |                                 | posting_transaction,           |
|              |                                 | transaction_claim (malformed)  |
| deposits,    | operation ids (rows and claims) | operation_transaction,         |
| withdrawals, |                                 | transaction_claim              |
| payouts      |                                 |                                |
| platform     | one range: platform accounts    | platform_balance               |
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg import sql

from finance.models import LedgerTransaction
from finance.states import DepositState, PayoutState, WithdrawalState
from reconciliation.models import Check, Invariant, SubjectType

_K = LedgerTransaction.Kind
_O = LedgerTransaction.OperationKind
_D, _W, _P = DepositState, WithdrawalState, PayoutState


@dataclass(frozen=True)
class OperationRule:
    """Which journal transactions each state of one operation kind implies."""

    operation_kind: str
    check: str
    table: str
    # What each implied transaction moves: the sum of its positive postings.
    gross: str
    implied: dict[str, tuple[str, ...]]

    @property
    def kinds(self) -> list[str]:
        return sorted({kind for kinds in self.implied.values() for kind in kinds})


# The table "Which journal transactions each operation state implies".
OPERATION_RULES = {
    rule.check: rule
    for rule in (
        OperationRule(
            operation_kind=_O.DEPOSIT,
            check=Check.DEPOSITS,
            table="finance_deposit",
            gross="o.amount",
            implied={
                _D.SUCCEEDED: (_K.DEPOSIT_CREDIT,),
                _D.CHARGED_BACK: (_K.DEPOSIT_CREDIT, _K.DEPOSIT_CHARGEBACK),
            },
        ),
        OperationRule(
            operation_kind=_O.WITHDRAWAL,
            check=Check.WITHDRAWALS,
            table="finance_withdrawal",
            gross="o.amount + o.fee",
            implied={
                _W.REQUESTED: (_K.WITHDRAWAL_HOLD,),
                _W.PROCESSING: (_K.WITHDRAWAL_HOLD,),
                _W.COMPLETED: (_K.WITHDRAWAL_HOLD,),
                _W.RETURNED: (_K.WITHDRAWAL_HOLD,),
                _W.FAILED: (_K.WITHDRAWAL_HOLD, _K.WITHDRAWAL_RELEASE),
                _W.CANCELLED: (_K.WITHDRAWAL_HOLD, _K.WITHDRAWAL_RELEASE),
            },
        ),
        OperationRule(
            operation_kind=_O.PAYOUT,
            check=Check.PAYOUTS,
            table="finance_payout",
            gross="o.amount",
            implied={
                _P.PAID: (_K.PAYOUT_PAID,),
                _P.RETURNED: (_K.PAYOUT_PAID, _K.PAYOUT_RETURNED),
            },
        ),
    )
}

# The operation kind a transaction of each kind must claim. Reversals claim
# the operation of what they reverse; adjustments may claim none.
REQUIRED_OPERATION_KIND = {
    kind: rule.operation_kind
    for rule in OPERATION_RULES.values()
    for kind in rule.kinds
}


@dataclass
class FindingData:
    invariant: str
    subject_type: str
    subject_key: str
    currency: str
    expected: int
    actual: int
    wallet_id: int | None = None
    account_id: int | None = None
    transaction_id: int | None = None
    operation_kind: str = ""
    operation_id: int | None = None
    suspect_transaction_ids: list[int] = field(default_factory=list)
    detail: dict = field(default_factory=dict)

    @property
    def difference(self) -> int:
        return self.actual - self.expected


@dataclass
class RangeResult:
    rows_scanned: int
    findings: list[FindingData]


# --- planning -------------------------------------------------------------

_BOUNDS: dict[str, str] = {
    Check.WALLETS: "SELECT min(account_id), max(account_id) FROM finance_wallet",
    # Postings may name transactions that do not exist: cover both tables.
    Check.JOURNAL: """
        SELECT least(p.lo, t.lo), greatest(p.hi, t.hi)
        FROM (SELECT min(transaction_id) AS lo, max(transaction_id) AS hi
              FROM finance_posting) AS p,
             (SELECT min(id) AS lo, max(id) AS hi
              FROM finance_ledgertransaction) AS t
    """,
}
# Claims may name operations that do not exist: cover rows and claims.
_OPERATION_BOUNDS = """
    SELECT least(o.lo, c.lo), greatest(o.hi, c.hi)
    FROM (SELECT min(id) AS lo, max(id) AS hi FROM {table}) AS o,
         (SELECT min(operation_id) AS lo, max(operation_id) AS hi
          FROM finance_ledgertransaction
          WHERE operation_kind = %(operation_kind)s) AS c
"""


def split(
    lo: int, hi: int, *, size: int, holes: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """Cut ``lo..hi`` into inclusive ranges of ``size`` ids, skipping ``holes``."""
    ranges = []
    start = lo
    while start <= hi:
        end = min(start + size - 1, hi)
        piece_start = start
        for hole in sorted(h for h in holes if start <= h <= end):
            if piece_start < hole:
                ranges.append((piece_start, hole - 1))
            piece_start = hole + 1
        if piece_start <= end:
            ranges.append((piece_start, end))
        start = end + 1
    return ranges


def plan_ranges(
    cursor,
    *,
    checks: list[str],
    ranges: int | None,
    range_size: int | None,
    min_range_size: int = 1,
) -> list[tuple[str, int, int]]:
    """Every (check, lo, hi) a scan of ``checks`` must run, as of the snapshot.

    Each check's id span is cut into ``ranges`` equal pieces of at least
    ``min_range_size`` ids, or into pieces of ``range_size`` ids. Wallet
    ranges leave out platform accounts: those hold half of all postings and
    belong to the platform check, so summing them again in the wallet check
    would only cost time.
    """
    # The platform check is one range, run first: it is the longest.
    planned: list[tuple[str, int, int]] = (
        [(Check.PLATFORM, 0, 0)] if Check.PLATFORM in checks else []
    )
    for check in Check.values:
        if check not in checks or check == Check.PLATFORM:
            continue
        if check in OPERATION_RULES:
            rule = OPERATION_RULES[check]
            query = _OPERATION_BOUNDS.format(table=rule.table)
            cursor.execute(query, {"operation_kind": rule.operation_kind})
        else:
            cursor.execute(_BOUNDS[check])
        lo, hi = cursor.fetchone()
        if lo is None:
            continue
        size = range_size or max(
            min_range_size, math.ceil((hi - lo + 1) / (ranges or 1))
        )
        holes: list[int] = []
        if check == Check.WALLETS:
            # Served by the partial unique index on platform accounts.
            cursor.execute("SELECT id FROM finance_account WHERE kind <> 'wallet'")
            holes = [row[0] for row in cursor.fetchall()]
        planned += [
            (check, start, end) for start, end in split(lo, hi, size=size, holes=holes)
        ]
    return planned


# --- running --------------------------------------------------------------


# Settings for the reader's transaction while one check runs (SET LOCAL,
# undone by RESET ALL after it). JIT is off everywhere: the range queries
# are cheap per row, and on large estimated costs PostgreSQL spends seconds
# compiling them. The joins of the journal and operation checks hash a
# whole range, which spills to disk at the default work_mem.
_PLAN: dict[str, list[str]] = {
    # The sum per account is a sorted aggregate over an index-only scan of
    # posting_account_amount (account_id INCLUDE amount), merged with the
    # wallets read in account order through their unique account index.
    # The planner underestimates the number of accounts and would pick a
    # hash aggregate over a sequential scan, which spills and is several
    # times slower (bench/deep_recon.py measures both), so the plan is
    # pinned.
    Check.WALLETS: [
        "SET LOCAL enable_hashagg = off",
        "SET LOCAL enable_hashjoin = off",
        "SET LOCAL enable_seqscan = off",
        "SET LOCAL enable_bitmapscan = off",
    ],
    Check.JOURNAL: ["SET LOCAL work_mem = '64MB'"],
    Check.PLATFORM: [],
    **{check: ["SET LOCAL work_mem = '64MB'"] for check in OPERATION_RULES},
}


def run_check(cursor, *, check: str, lo: int, hi: int) -> RangeResult:
    # One round trip: several statements without parameters.
    cursor.execute("; ".join(["SET LOCAL jit = off", *_PLAN[check]]))
    try:
        if check == Check.WALLETS:
            return _wallets(cursor, lo, hi)
        if check == Check.JOURNAL:
            return _journal(cursor, lo, hi)
        if check == Check.PLATFORM:
            return _platform(cursor)
        return _operations(cursor, OPERATION_RULES[check], lo, hi)
    finally:
        cursor.execute("RESET ALL")


_WALLETS = """
SELECT coalesce(sum(s.postings), 0),
       json_agg(json_build_array(w.id, w.account_id, w.currency, w.balance,
                                 coalesce(s.total, 0)))
           FILTER (WHERE w.balance <> coalesce(s.total, 0))
FROM finance_wallet AS w
LEFT JOIN (
    SELECT p.account_id, sum(p.amount) AS total, count(*) AS postings
    FROM finance_posting AS p
    WHERE p.account_id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
    GROUP BY p.account_id
) AS s ON s.account_id = w.account_id
WHERE w.account_id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
"""


def wallet_check_plan(cursor, *, lo: int, hi: int) -> list[str]:
    """The plan nodes of the wallet check over ``lo..hi``, top first.

    For the benchmark and the tests, which hold the plan to the sorted
    aggregate over an index-only scan of the covering index.
    """
    cursor.execute("; ".join(["SET LOCAL jit = off", *_PLAN[Check.WALLETS]]))
    try:
        cursor.execute("EXPLAIN (FORMAT JSON) " + _WALLETS, {"lo": lo, "hi": hi})
        plan = cursor.fetchone()[0][0]["Plan"]
    finally:
        cursor.execute("RESET ALL")
    nodes, pending = [], [plan]
    while pending:
        node = pending.pop(0)
        name = node["Node Type"]
        if node.get("Strategy") in ("Sorted", "Hashed"):
            name = {"Sorted": "GroupAggregate", "Hashed": "HashAggregate"}[
                node["Strategy"]
            ]
        if "Index Name" in node:
            name += f" using {node['Index Name']}"
        nodes.append(name)
        pending.extend(node.get("Plans", []))
    return nodes


# Only for the wallets found wrong: their latest transactions, to start from.
_LATEST_TRANSACTIONS = """
SELECT a.account_id,
       ARRAY(SELECT p.transaction_id FROM finance_posting AS p
             WHERE p.account_id = a.account_id
             ORDER BY p.transaction_id DESC LIMIT 5)
FROM unnest(%(accounts)s::bigint[]) AS a(account_id)
"""


def _wallets(cursor, lo: int, hi: int) -> RangeResult:
    cursor.execute(_WALLETS, {"lo": lo, "hi": hi})
    postings, mismatches = cursor.fetchone()
    mismatches = sorted(mismatches or [], key=lambda row: row[1])
    suspects: dict[int, list[int]] = {}
    if mismatches:
        cursor.execute(
            _LATEST_TRANSACTIONS, {"accounts": [row[1] for row in mismatches]}
        )
        suspects = dict(cursor.fetchall())
    findings = [
        FindingData(
            invariant=Invariant.WALLET_BALANCE,
            subject_type=SubjectType.WALLET,
            subject_key=f"wallet:{wallet_id}",
            currency=currency,
            # The ledger is the record; the wallet's balance is its cache.
            expected=int(total),
            actual=balance,
            wallet_id=wallet_id,
            account_id=account_id,
            suspect_transaction_ids=suspects.get(account_id, []),
        )
        for wallet_id, account_id, currency, balance, total in mismatches
    ]
    return RangeResult(rows_scanned=int(postings), findings=findings)


def _required_operation_kind_sql() -> sql.Composable:
    cases = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(kind), sql.Literal(op))
        for kind, op in sorted(REQUIRED_OPERATION_KIND.items())
    )
    return sql.SQL("CASE t.kind {} END").format(cases)


# Three passes over the range, each one plan node deep:
# 1. per transaction, grouped straight off the transaction_id index (no
#    sort): its sum, whether it mixes currencies, whether it exists. The
#    "C" collation makes min/max of the currency code a byte compare;
# 2. postings whose account is missing or in another currency, a hash join
#    of the range against accounts;
# 3. transactions whose claim is malformed (kind and operation disagree).
_JOURNAL = """
SELECT
    (SELECT json_build_array(
                coalesce(sum(x.postings), 0),
                json_agg(json_build_array(x.transaction_id, x.total,
                                          x.currency_lo, x.missing))
                    FILTER (WHERE x.total <> 0 OR x.missing
                               OR x.currency_lo <> x.currency_hi))
     FROM (
        SELECT p.transaction_id, sum(p.amount) AS total, count(*) AS postings,
               min(p.currency COLLATE "C") AS currency_lo,
               max(p.currency COLLATE "C") AS currency_hi,
               bool_or(t.id IS NULL) AS missing
        FROM finance_posting AS p
        LEFT JOIN finance_ledgertransaction AS t ON t.id = p.transaction_id
        WHERE p.transaction_id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
        GROUP BY p.transaction_id
     ) AS x),
    (SELECT json_agg(json_build_array(y.transaction_id, y.account_id,
                                      y.currency, y.account_currency, y.total))
     FROM (
        SELECT p.transaction_id, p.account_id, p.currency,
               a.currency AS account_currency, sum(p.amount) AS total
        FROM finance_posting AS p
        LEFT JOIN finance_account AS a ON a.id = p.account_id
        WHERE p.transaction_id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
          AND (a.id IS NULL OR a.currency <> p.currency)
        GROUP BY p.transaction_id, p.account_id, p.currency, a.currency
     ) AS y),
    (SELECT json_agg(json_build_array(z.id, z.kind, z.operation_kind,
                                      z.operation_id, z.problem))
     FROM (
        SELECT t.id, t.kind, t.operation_kind, t.operation_id,
               CASE
                   WHEN (t.operation_kind = '') <> (t.operation_id IS NULL)
                       THEN 'operation kind and id must be set together'
                   WHEN t.operation_kind
                        NOT IN ('', 'deposit', 'withdrawal', 'payout')
                       THEN 'unknown operation kind'
                   WHEN t.operation_kind <> {required}
                       THEN 'a ' || t.kind || ' must claim a ' || {required}
               END AS problem
        FROM finance_ledgertransaction AS t
        WHERE t.id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
     ) AS z
     WHERE z.problem IS NOT NULL)
"""
# Only for the transactions found wrong: their sums per currency.
_TRANSACTION_DETAIL = """
SELECT p.transaction_id, p.currency, sum(p.amount),
       sum(abs(p.amount)), sum(p.amount) FILTER (WHERE p.amount > 0)
FROM finance_posting AS p
WHERE p.transaction_id = ANY(%(ids)s::bigint[])
GROUP BY p.transaction_id, p.currency
ORDER BY p.transaction_id, p.currency
"""


def _journal(cursor, lo: int, hi: int) -> RangeResult:
    query = sql.SQL(_JOURNAL).format(required=_required_operation_kind_sql())
    cursor.execute(query, {"lo": lo, "hi": hi})
    (postings, transactions), lines, claims = cursor.fetchone()
    transactions, lines, claims = transactions or [], lines or [], claims or []

    # Per-currency sums, only for the few transactions that need them.
    sums = _transaction_sums(
        cursor, {row[0] for row in transactions} | {row[0] for row in claims}
    )

    def about(tx_id: int, *, on_account: int | None = None, **fields) -> FindingData:
        # A transaction can be wrong on several accounts: one subject each.
        key = f"transaction:{tx_id}"
        if on_account is not None:
            key += f"/account:{on_account}"
        return FindingData(
            subject_type=SubjectType.TRANSACTION,
            subject_key=key,
            transaction_id=tx_id,
            suspect_transaction_ids=[tx_id],
            **fields,
        )

    findings = []
    for tx_id, _total, _currency, missing in sorted(transactions):
        for currency, total, gross_abs, _gross in sums.get(tx_id, []):
            if total:
                findings.append(
                    about(
                        tx_id,
                        invariant=Invariant.TRANSACTION_BALANCED,
                        currency=currency,
                        expected=0,
                        actual=total,
                    )
                )
            if missing:
                # Orphaned postings may balance: their gross is what is adrift.
                findings.append(
                    about(
                        tx_id,
                        invariant=Invariant.POSTING_TRANSACTION,
                        currency=currency,
                        expected=0,
                        actual=gross_abs,
                    )
                )
    for tx_id, account_id, currency, account_currency, total in sorted(lines):
        missing_account = account_currency is None
        findings.append(
            about(
                tx_id,
                invariant=(
                    Invariant.POSTING_ACCOUNT
                    if missing_account
                    else Invariant.POSTING_CURRENCY
                ),
                currency=currency,
                expected=0,
                actual=int(total),
                account_id=account_id,
                on_account=account_id,
                detail=(
                    {"missing_account_id": account_id}
                    if missing_account
                    else {"account_currency": account_currency}
                ),
            )
        )
    for tx_id, kind, operation_kind, operation_id, problem in sorted(claims):
        per_currency = sums.get(tx_id) or [("", 0, 0, 0)]
        findings.append(
            about(
                tx_id,
                invariant=Invariant.TRANSACTION_CLAIM,
                currency=per_currency[0][0],
                expected=0,
                actual=sum(gross for *_, gross in per_currency),
                operation_kind=operation_kind,
                operation_id=operation_id,
                detail={"problem": problem, "kind": kind},
            )
        )
    return RangeResult(rows_scanned=int(postings), findings=findings)


# 1. ``moved``: one aggregate over the range's claiming transactions, per
#    operation and transaction kind: what they move, net of reversals (a
#    reversal counts against the kind it reverses);
# 2. every operation whose state implies a kind that does not move exactly
#    the operation's amount (missing, wrong amount, posted twice, reversed);
# 3. every claim of a missing operation, or of one whose state does not
#    imply the claiming kind.
# Looking up each claim's postings costs about 16 µs per operation, far
# more per row than the wallet check; an index on finance_posting
# (transaction_id) INCLUDE (amount) would make the lookups index-only, but
# that is finance's schema to change, and a weekly scan can afford it now.
# The LATERAL subqueries are index lookups per claim (postings by
# transaction, the reversed transaction, the operation by id); LIMIT 1
# keeps the planner from flattening them into joins, which hash the whole
# posting, transaction or operation table once per range.
_OPERATIONS = """
WITH implied (state, kind) AS (
    VALUES {implied}
), claims AS MATERIALIZED (
    SELECT t.id, t.kind, t.operation_id, t.reverses_id, g.gross,
           coalesce(r.kind, t.kind) AS counts_as
    FROM finance_ledgertransaction AS t
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(p.amount) FILTER (WHERE p.amount > 0), 0) AS gross
        FROM finance_posting AS p WHERE p.transaction_id = t.id
    ) AS g
    LEFT JOIN LATERAL (
        SELECT r.kind FROM finance_ledgertransaction AS r
        WHERE r.id = t.reverses_id
        LIMIT 1
    ) AS r ON true
    WHERE t.operation_kind = %(operation_kind)s
      AND t.operation_id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
), moved AS (
    SELECT c.operation_id, c.counts_as AS kind,
           sum(CASE WHEN c.reverses_id IS NULL THEN c.gross ELSE -c.gross END)
               AS net
    FROM claims AS c
    GROUP BY c.operation_id, c.counts_as
)
SELECT
    (SELECT count(*) FROM {table} AS o
     WHERE o.id BETWEEN %(lo)s::bigint AND %(hi)s::bigint)
    + (SELECT count(*) FROM claims),
    (SELECT json_agg(json_build_array(o.id, o.state, o.currency, o.wallet_id,
                                      i.kind, {gross}, coalesce(m.net, 0)))
     FROM {table} AS o
     JOIN implied AS i ON i.state = o.state
     LEFT JOIN moved AS m ON m.operation_id = o.id AND m.kind = i.kind
     WHERE o.id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
       AND coalesce(m.net, 0) <> {gross}),
    (SELECT json_agg(json_build_array(c.id, c.kind, c.operation_id, o.state,
                                      o.currency, o.wallet_id))
     FROM claims AS c
     LEFT JOIN LATERAL (
         SELECT o.state, o.currency, o.wallet_id FROM {table} AS o
         WHERE o.id = c.operation_id
         LIMIT 1
     ) AS o ON true
     LEFT JOIN implied AS i ON i.state = o.state AND i.kind = c.kind
     WHERE o.state IS NULL OR (c.kind = ANY(%(kinds)s) AND i.kind IS NULL))
"""
# Only for the operations found wrong: every transaction claiming them.
_CLAIMS_OF = """
SELECT t.operation_id, array_agg(t.id ORDER BY t.id)
FROM finance_ledgertransaction AS t
WHERE t.operation_kind = %(operation_kind)s AND t.operation_id = ANY(%(ids)s)
GROUP BY t.operation_id
"""


def _transaction_sums(cursor, ids) -> dict[int, list[tuple]]:
    """(currency, total, gross of abs, gross) per currency, for a few transactions."""
    sums: dict[int, list[tuple]] = {}
    if ids:
        cursor.execute(_TRANSACTION_DETAIL, {"ids": sorted(ids)})
        for tx_id, currency, total, gross_abs, gross in cursor.fetchall():
            sums.setdefault(tx_id, []).append(
                (currency, int(total), int(gross_abs), int(gross or 0))
            )
    return sums


def _operations(cursor, rule: OperationRule, lo: int, hi: int) -> RangeResult:
    implied = sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(state), sql.Literal(kind))
        for state, kinds in rule.implied.items()
        for kind in kinds
    )
    query = sql.SQL(_OPERATIONS).format(
        gross=sql.SQL(rule.gross), table=sql.Identifier(rule.table), implied=implied
    )
    params = {
        "lo": lo,
        "hi": hi,
        "operation_kind": rule.operation_kind,
        "kinds": rule.kinds,
    }
    cursor.execute(query, params)
    rows, missing, claims = cursor.fetchone()
    missing, claims = sorted(missing or []), sorted(claims or [])
    suspects: dict[int, list[int]] = {}
    if missing:
        ids = sorted({row[0] for row in missing})
        cursor.execute(_CLAIMS_OF, {"operation_kind": rule.operation_kind, "ids": ids})
        suspects = dict(cursor.fetchall())
    sums = _transaction_sums(cursor, {row[0] for row in claims})
    findings = [
        FindingData(
            invariant=Invariant.OPERATION_TRANSACTION,
            subject_type=SubjectType.OPERATION,
            subject_key=f"{rule.operation_kind}:{op_id}/{kind}",
            currency=currency,
            expected=int(gross),
            actual=int(net),
            wallet_id=wallet_id,
            operation_kind=rule.operation_kind,
            operation_id=op_id,
            suspect_transaction_ids=suspects.get(op_id, []),
            detail={"state": state, "transaction_kind": kind},
        )
        for op_id, state, currency, wallet_id, kind, gross, net in missing
    ]
    for tx_id, kind, op_id, state, currency, wallet_id in claims:
        per_currency = sums.get(tx_id) or [("", 0, 0, 0)]
        findings.append(
            FindingData(
                invariant=Invariant.TRANSACTION_CLAIM,
                subject_type=SubjectType.TRANSACTION,
                subject_key=f"transaction:{tx_id}",
                currency=currency or per_currency[0][0],
                expected=0,
                actual=sum(gross for *_, gross in per_currency),
                wallet_id=wallet_id,
                transaction_id=tx_id,
                operation_kind=rule.operation_kind,
                operation_id=op_id,
                suspect_transaction_ids=[tx_id],
                detail={
                    "kind": kind,
                    "problem": (
                        f"claims {rule.operation_kind} {op_id}, which does not exist"
                        if state is None
                        else f"a {kind} does not belong to a {state} "
                        f"{rule.operation_kind}"
                    ),
                },
            )
        )
    return RangeResult(rows_scanned=int(rows), findings=findings)


_PLATFORM_EXPECTED = {
    "in_transit": [_W.REQUESTED, _W.PROCESSING],
    "fee_kept": [s for s in _W.values if s not in (_W.FAILED, _W.CANCELLED)],
}
# Where docs/architecture.md says each platform account must end, per
# currency; suspense (and any platform account nothing explains) at zero.
# This is one range: the platform accounts are few and each holds a large
# share of all postings, so they cannot be split by account id. At 10M
# postings it takes seconds; should it ever dominate a scan, a per-account
# running total kept by finance would let it read one row per account.
_PLATFORM = """
WITH expected AS (
    SELECT kind, currency, provider, sum(amount) AS amount
    FROM (
        SELECT 'payouts_in_transit' AS kind, w.currency, '' AS provider,
               w.amount
        FROM finance_withdrawal AS w WHERE w.state = ANY(%(in_transit)s)
        UNION ALL
        SELECT 'fees', w.currency, '', w.fee
        FROM finance_withdrawal AS w
        WHERE w.state = ANY(%(fee_kept)s) AND w.fee <> 0
        UNION ALL
        SELECT 'provider_clearing', p.currency, p.provider, p.amount
        FROM finance_payout AS p WHERE p.state = 'paid'
        UNION ALL
        SELECT 'provider_clearing', d.currency, d.provider, -d.amount
        FROM finance_deposit AS d WHERE d.state = 'succeeded'
    ) AS implied
    GROUP BY kind, currency, provider
), actual AS (
    SELECT a.id, a.kind, a.currency, a.provider, s.total, s.postings
    FROM finance_account AS a
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(p.amount), 0) AS total, count(*) AS postings
        FROM finance_posting AS p WHERE p.account_id = a.id
    ) AS s
    WHERE a.kind <> 'wallet'
)
SELECT coalesce(sum(a.postings), 0),
       json_agg(json_build_array(
           a.id, coalesce(a.kind, e.kind), coalesce(a.currency, e.currency),
           coalesce(a.provider, e.provider), coalesce(e.amount, 0),
           coalesce(a.total, 0)))
           FILTER (WHERE coalesce(e.amount, 0) <> coalesce(a.total, 0))
FROM actual AS a
FULL JOIN expected AS e
    ON e.kind = a.kind AND e.currency = a.currency AND e.provider = a.provider
"""


def _platform(cursor) -> RangeResult:
    cursor.execute(_PLATFORM, _PLATFORM_EXPECTED)
    postings, mismatches = cursor.fetchone()
    findings = [
        FindingData(
            invariant=Invariant.PLATFORM_BALANCE,
            subject_type=SubjectType.ACCOUNT,
            subject_key=f"platform:{kind}:{provider}:{currency}",
            currency=currency,
            expected=int(expected),
            actual=int(actual),
            account_id=account_id,
            detail={"kind": kind, "provider": provider},
        )
        for account_id, kind, currency, provider, expected, actual in sorted(
            mismatches or [], key=lambda row: (row[1], row[3], row[2])
        )
    ]
    return RangeResult(rows_scanned=int(postings), findings=findings)
