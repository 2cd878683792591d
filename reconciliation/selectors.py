"""Reads behind the daily report: SQL aggregates over one UTC day.

Every section is grouped and summed by PostgreSQL; Python only receives
the grouped rows (tens, not the day's operations).
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, IntegerField, Min, Q, Sum, Value
from django.db.models.functions import Coalesce

from finance.models import Deposit, LedgerTransaction, Payout, Withdrawal
from finance.states import DepositState, PayoutState, WithdrawalState
from reconciliation.models import DailyReport
from stuck.models import StuckCase

OPERATIONS: list[tuple[str, Any]] = [
    ("deposit", Deposit),
    ("withdrawal", Withdrawal),
    ("payout", Payout),
]

# States an operation reaches when money has moved or will not move: the
# "settled" basis counts operations that entered one of these that day.
SETTLED_STATES = {
    "deposit": [DepositState.SUCCEEDED, DepositState.FAILED, DepositState.CHARGED_BACK],
    "withdrawal": [
        WithdrawalState.COMPLETED,
        WithdrawalState.FAILED,
        WithdrawalState.CANCELLED,
        WithdrawalState.RETURNED,
    ],
    "payout": [PayoutState.PAID, PayoutState.FAILED, PayoutState.RETURNED],
}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as [start, end)."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def operation_totals(*, start: datetime, end: datetime) -> list[dict]:
    """Per kind, basis, provider, currency and state: count, amount, fee.

    opened: created in [start, end), grouped by their state now.
    settled: entered a settled state in [start, end) and still in it; the
    (state, state_changed_at) index serves it.
    """
    rows = []
    for kind, model in OPERATIONS:
        fee = (
            Sum("fee") if model is Withdrawal else Value(0, output_field=IntegerField())
        )
        bases = {
            "opened": Q(created_at__gte=start, created_at__lt=end),
            "settled": Q(
                state__in=SETTLED_STATES[kind],
                state_changed_at__gte=start,
                state_changed_at__lt=end,
            ),
        }
        for basis, condition in bases.items():
            grouped = (
                model.objects.filter(condition)
                .values("provider", "currency", "state")
                .annotate(count=Count("id"), amount=Sum("amount"), fee=fee)
                .order_by("provider", "currency", "state")
            )
            rows += [{"operation_kind": kind, "basis": basis, **row} for row in grouped]
    return rows


def operation_count(*, start: datetime, end: datetime) -> int:
    """Distinct operations opened or settled in the day (the report's rows)."""
    total = 0
    for kind, model in OPERATIONS:
        total += model.objects.filter(
            Q(created_at__gte=start, created_at__lt=end)
            | Q(
                state__in=SETTLED_STATES[kind],
                state_changed_at__gte=start,
                state_changed_at__lt=end,
            )
        ).count()
    return total


_LEDGER_SQL = """
SELECT COALESCE(d.provider, w.provider, p.provider, '') AS provider,
       po.currency, t.kind, count(DISTINCT t.id),
       COALESCE(sum(po.amount) FILTER (WHERE po.amount > 0), 0)
FROM finance_ledgertransaction t
JOIN finance_posting po ON po.transaction_id = t.id
LEFT JOIN finance_deposit d
       ON t.operation_kind = 'deposit' AND d.id = t.operation_id
LEFT JOIN finance_withdrawal w
       ON t.operation_kind = 'withdrawal' AND w.id = t.operation_id
LEFT JOIN finance_payout p
       ON t.operation_kind = 'payout' AND p.id = t.operation_id
WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""


def ledger_totals(*, start: datetime, end: datetime) -> list[dict]:
    """Journal transactions booked in the day, per operation provider,
    currency and kind: how many, and the sum of their debit side."""
    with connection.cursor() as cursor:
        cursor.execute(_LEDGER_SQL, {"start": start, "end": end})
        return [
            {
                "provider": provider,
                "currency": currency,
                "kind": kind,
                "transaction_count": count,
                "amount": amount,
            }
            for provider, currency, kind, count, amount in cursor.fetchall()
        ]


def ledger_transaction_count(*, start: datetime, end: datetime) -> int:
    return LedgerTransaction.objects.filter(
        created_at__gte=start, created_at__lt=end
    ).count()


def open_stuck_totals() -> list[dict]:
    return [
        dict(row)
        for row in StuckCase.objects.filter(closed_at__isnull=True)
        .values("item_kind", "state", "provider")
        .annotate(
            rule_name=Min("rule__name"),
            count=Count("id"),
            sla_breaches=Coalesce(Count("id", filter=Q(sla_breached=True)), 0),
            oldest_since=Min("stuck_since"),
        )
        .order_by("item_kind", "state", "provider")
    ]


def report_for(day: date) -> DailyReport | None:
    return DailyReport.objects.filter(report_date=day).first()
