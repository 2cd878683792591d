"""Building, storing and sending the daily reconciliation report.

``daily_report_build`` is the scheduled job (the job framework runs it for
yesterday and alerts on what it raises); the management command calls it
for any date.
"""

import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

import structlog
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from reconciliation import selectors
from reconciliation.models import (
    DailyReport,
    DailyReportLedgerLine,
    DailyReportOperationLine,
    DailyReportSettlementItem,
    DailyReportStatement,
    DailyReportStuckLine,
)
from reconciliation.settlement import Statement, fetch_statement, statement_parse

log = structlog.get_logger(__name__)

# Two builds of the same day (beat and a person) queue on this lock.
_LOCK_KEY = zlib.crc32(b"reconciliation.daily_report_build")

Source = DailyReportStatement.Source
Item = DailyReportSettlementItem.Kind


@dataclass(frozen=True)
class StatementInput:
    """A provider's statement handed in, with where it came from."""

    text: str
    source_name: str
    source: str = Source.FILE


@dataclass(frozen=True)
class DailyReportResult:
    report_id: int | None
    report_date: date
    dry_run: bool
    replaced: bool
    # Operations opened or settled in the day: 0 means an empty day, which
    # the framework's output check should treat as a failure.
    row_count: int
    ledger_transaction_count: int
    statement_lines: int
    matched: int
    missing_internal: int
    missing_at_provider: int
    amount_mismatches: int
    currency_mismatches: int
    other_day: int
    malformed_lines: int
    providers_not_checked: list[str]
    open_stuck_cases: int
    content_digest: str
    emailed_to: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["report_date"] = self.report_date.isoformat()
        return data

    @property
    def counts(self) -> dict:
        """What the job framework records with the run."""
        data = self.as_dict()
        data["emailed_to"] = len(self.emailed_to)
        del data["content_digest"], data["dry_run"]
        return data


def daily_report_build(
    *,
    report_date: date,
    statements: dict[str, StatementInput] | None = None,
    fetch: bool = True,
    send_email: bool = True,
    dry_run: bool = False,
) -> DailyReportResult:
    """Build the report of ``report_date`` (a UTC day), store it and mail it.

    ``statements`` gives settlement statements per provider code (imported
    files). Every configured provider without one is fetched when ``fetch``
    is true, and left "not checked" otherwise. A statement that cannot be
    fetched or whose header is wrong raises before anything is written, so
    a failed build leaves the day's previous report in place.

    1. Fetch and parse every statement (outside the transaction).
    2. In one transaction holding an advisory lock: delete the day's report,
       aggregate each section with SQL into a new one, match the statements
       in SQL, and compute the content digest. Readers see the old report
       or the new one, never a mix.
    3. After commit, e-mail it to DAILY_REPORT_RECIPIENTS and record that.
       A mail failure raises with the report stored and ``emailed_at``
       empty; running the day again rebuilds and resends it.
    """
    if connection.vendor != "postgresql":
        # COPY, FILTER and the matching SQL are PostgreSQL's.
        raise RuntimeError("the daily report needs PostgreSQL (set DATABASE_URL)")
    start, end = selectors.day_bounds(report_date)
    parsed = _gather_statements(
        report_date=report_date, given=statements or {}, fetch=fetch
    )

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        replaced, _ = DailyReport.objects.filter(report_date=report_date).delete()
        report = DailyReport.objects.create(
            report_date=report_date,
            period_start=start,
            period_end=end,
            built_at=timezone.now(),
            operation_count=selectors.operation_count(start=start, end=end),
            ledger_transaction_count=selectors.ledger_transaction_count(
                start=start, end=end
            ),
            settlement_exception_count=0,
            open_stuck_case_count=0,
            content_digest="",
        )
        _store_operations(report, start=start, end=end)
        _store_statements(report, parsed, start=start, end=end)
        _store_stuck(report)

        report.settlement_exception_count = report.settlement_items.count()
        report.open_stuck_case_count = sum(
            report.stuck_lines.values_list("count", flat=True)
        )
        report.content_digest = _digest(report)
        report.save()
        result = _result(report, replaced=bool(replaced), dry_run=dry_run)
        if dry_run:
            transaction.set_rollback(True)

    log.info(
        "reconciliation.daily_report_built",
        report_date=str(report_date),
        dry_run=dry_run,
        rows=result.row_count,
        exceptions=report.settlement_exception_count,
        digest=result.content_digest[:12],
    )
    if dry_run or not send_email or not settings.DAILY_REPORT_RECIPIENTS:
        return result
    recipients = daily_report_send(report=report)
    return DailyReportResult(**{**asdict(result), "emailed_to": recipients})


def _gather_statements(
    *, report_date: date, given: dict[str, StatementInput], fetch: bool
) -> dict[str, tuple[StatementInput | None, Statement | None]]:
    """Per provider: its statement input and parse, or (None, None)."""
    providers = set(settings.PROVIDERS) | set(given)
    gathered: dict[str, tuple[StatementInput | None, Statement | None]] = {}
    for provider in sorted(providers):
        source = given.get(provider)
        if source is None and fetch:
            source = StatementInput(
                text=fetch_statement(provider, report_date),
                source_name=f"{provider} API",
                source=Source.FETCHED,
            )
        gathered[provider] = (
            (source, statement_parse(source.text)) if source else (None, None)
        )
    return gathered


def _store_operations(report: DailyReport, *, start: datetime, end: datetime):
    DailyReportOperationLine.objects.bulk_create(
        DailyReportOperationLine(report=report, **row)
        for row in selectors.operation_totals(start=start, end=end)
    )
    DailyReportLedgerLine.objects.bulk_create(
        DailyReportLedgerLine(report=report, **row)
        for row in selectors.ledger_totals(start=start, end=end)
    )


def _store_stuck(report: DailyReport):
    DailyReportStuckLine.objects.bulk_create(
        DailyReportStuckLine(report=report, **row)
        for row in selectors.open_stuck_totals()
    )


# --- settlement matching ----------------------------------------------------
# The SQL below is assembled from fixed fragments and choice values (hence
# the S608 waivers); every value from a statement is a bound parameter or
# arrives through COPY.

_STAGE = """
CREATE TEMP TABLE statement_line (
    provider text, line_number int, provider_reference text, line_type text,
    amount bigint, currency text
) ON COMMIT DROP
"""

_ITEM_COLUMNS = """
    report_id, provider, kind, line_number, provider_reference, line_type,
    statement_amount, statement_currency, operation_kind, operation_id,
    internal_amount, internal_currency, internal_state, detail
"""

# Statement side. Each line finds its operation by provider reference and
# the journal transaction its type implies (payout -> payout_paid, ...);
# whatever does not match exactly becomes an item. Returns matched counts.
_MATCH_STATEMENT = f"""
WITH line AS (
    SELECT s.*,
           CASE WHEN s.line_type IN ('payout', 'payout_return')
                THEN 'payout' ELSE 'deposit' END AS op_kind,
           CASE s.line_type WHEN 'payout' THEN 'payout_paid'
                            WHEN 'payout_return' THEN 'payout_returned'
                            WHEN 'deposit' THEN 'deposit_credit'
                            ELSE 'deposit_chargeback' END AS ledger_kind
    FROM statement_line s
),
joined AS (
    SELECT l.*,
           COALESCE(p.id, d.id) AS op_id,
           COALESCE(p.amount, d.amount) AS op_amount,
           COALESCE(p.currency, d.currency) AS op_currency,
           COALESCE(p.state, d.state) AS op_state,
           (SELECT min(t.created_at) FROM finance_ledgertransaction t
             WHERE t.operation_kind = l.op_kind
               AND t.operation_id = COALESCE(p.id, d.id)
               AND t.kind = l.ledger_kind) AS booked_at
    FROM line l
    LEFT JOIN finance_payout p
           ON l.op_kind = 'payout' AND p.provider = l.provider
          AND p.provider_reference = l.provider_reference
    LEFT JOIN finance_deposit d
           ON l.op_kind = 'deposit' AND d.provider = l.provider
          AND d.provider_reference = l.provider_reference
),
classified AS (
    SELECT j.*,
           CASE
             WHEN op_id IS NULL OR booked_at IS NULL THEN '{Item.MISSING_INTERNAL}'
             WHEN op_currency <> currency THEN '{Item.CURRENCY_MISMATCH}'
             WHEN op_amount <> amount THEN '{Item.AMOUNT_MISMATCH}'
             WHEN booked_at < %(start)s OR booked_at >= %(end)s
               THEN '{Item.OTHER_DAY}'
           END AS item_kind,
           CASE
             WHEN op_id IS NULL
               THEN 'no ' || op_kind || ' with this provider reference'
             WHEN booked_at IS NULL
               THEN 'our ' || op_kind || ' is ' || op_state
                    || ', no ' || ledger_kind || ' booked'
             WHEN op_currency = currency AND op_amount = amount
               THEN 'we booked it '
                    || to_char(booked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                    || ' UTC'
             ELSE ''
           END AS detail
    FROM joined j
),
inserted AS (
    INSERT INTO reconciliation_dailyreportsettlementitem ({_ITEM_COLUMNS})
    SELECT %(report_id)s, provider, item_kind, line_number, provider_reference,
           line_type, amount, currency, CASE WHEN op_id IS NULL THEN ''
           ELSE op_kind END, op_id, op_amount, COALESCE(op_currency, ''),
           COALESCE(op_state, ''), detail
    FROM classified WHERE item_kind IS NOT NULL
)
SELECT provider, count(*) FILTER (WHERE item_kind IS NULL)
FROM classified GROUP BY provider
"""  # noqa: S608

# Our side. Every movement booked in the day that a statement should list,
# for the providers whose statement was checked, that no statement line
# names (by provider reference and type).
_MATCH_INTERNAL = f"""
INSERT INTO reconciliation_dailyreportsettlementitem ({_ITEM_COLUMNS})
SELECT %(report_id)s, op.provider, '{Item.MISSING_AT_PROVIDER}', NULL,
       COALESCE(op.provider_reference, ''), m.line_type, NULL, '',
       t.operation_kind, op.id, op.amount, op.currency, op.state,
       CASE WHEN op.provider_reference IS NULL
            THEN 'we booked ' || t.kind || ' but never got a provider reference'
            ELSE 'we booked ' || t.kind || ' '
                 || to_char(t.created_at AT TIME ZONE 'UTC', 'HH24:MI') || ' UTC'
       END
FROM finance_ledgertransaction t
JOIN (VALUES ('payout_paid', 'payout'), ('payout_returned', 'payout_return'),
             ('deposit_credit', 'deposit'), ('deposit_chargeback', 'chargeback'))
     AS m (ledger_kind, line_type) ON m.ledger_kind = t.kind
JOIN LATERAL (
    SELECT id, provider, provider_reference, amount, currency, state
      FROM finance_payout
     WHERE t.operation_kind = 'payout' AND id = t.operation_id
    UNION ALL
    SELECT id, provider, provider_reference, amount, currency, state
      FROM finance_deposit
     WHERE t.operation_kind = 'deposit' AND id = t.operation_id
) op ON true
WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
  AND op.provider = ANY(%(providers)s)
  AND NOT EXISTS (
      SELECT 1 FROM statement_line s
       WHERE s.provider = op.provider
         AND s.provider_reference = op.provider_reference
         AND s.line_type = m.line_type
  )
"""  # noqa: S608


def _store_statements(report, parsed, *, start: datetime, end: datetime):
    """Match every checked statement against the day's bookings, in SQL."""
    checked = sorted(p for p, (source, _) in parsed.items() if source is not None)
    # Every provider with business that day gets a statement row, checked
    # or not, so a provider nobody configured cannot pass unnoticed.
    with_business = set(
        report.operation_lines.values_list("provider", flat=True)
    ) | set(report.ledger_lines.exclude(provider="").values_list("provider", flat=True))
    providers = sorted(set(parsed) | with_business)

    DailyReportSettlementItem.objects.bulk_create(
        DailyReportSettlementItem(
            report=report,
            provider=provider,
            kind=Item.MALFORMED,
            line_number=bad.line_number,
            detail=f"{bad.reason}: {bad.text}"[:300],
        )
        for provider in checked
        for bad in parsed[provider][1].malformed
    )

    matched: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(_STAGE)
        with cursor.cursor.copy(
            "COPY statement_line (provider, line_number, provider_reference, "
            "line_type, amount, currency) FROM STDIN"
        ) as copy:
            for provider in checked:
                for line in parsed[provider][1].lines:
                    copy.write_row(
                        (
                            provider,
                            line.line_number,
                            line.provider_reference,
                            line.line_type,
                            line.amount,
                            line.currency,
                        )
                    )
        params = {
            "report_id": report.pk,
            "start": start,
            "end": end,
            "providers": checked,
        }
        cursor.execute(_MATCH_STATEMENT, params)
        matched = dict(cursor.fetchall())
        cursor.execute(_MATCH_INTERNAL, params)
        cursor.execute("DROP TABLE statement_line")

    exceptions = dict(
        report.settlement_items.exclude(kind=Item.MALFORMED)
        .values_list("provider")
        .annotate(n=Count("id"))
    )
    for provider in providers:
        source, statement = parsed.get(provider, (None, None))
        DailyReportStatement.objects.create(
            report=report,
            provider=provider,
            source=source.source if source else Source.NOT_CHECKED,
            source_name=source.source_name[:200] if source else "",
            line_count=(
                len(statement.lines) + len(statement.malformed) if statement else 0
            ),
            matched_count=matched.get(provider, 0),
            malformed_count=len(statement.malformed) if statement else 0,
            exception_count=exceptions.get(provider, 0),
        )


# --- digest, result, e-mail -------------------------------------------------


def report_content(report: DailyReport) -> dict:
    """Everything the report says, in a stable order, without build times."""

    def rows(queryset, *fields):
        return [list(row) for row in queryset.values_list(*fields)]

    return {
        "date": report.report_date.isoformat(),
        "operations": report.operation_count,
        "ledger_transactions": report.ledger_transaction_count,
        "operation_lines": rows(
            report.operation_lines.all(),
            "provider", "currency", "operation_kind", "basis", "state",
            "count", "amount", "fee",
        ),
        "ledger_lines": rows(
            report.ledger_lines.all(),
            "provider", "currency", "kind", "transaction_count", "amount",
        ),
        "statements": rows(
            report.statements.all(),
            "provider", "source", "source_name", "line_count", "matched_count",
            "malformed_count", "exception_count",
        ),
        "settlement_items": rows(
            report.settlement_items.order_by(
                "provider", "kind", "line_number", "provider_reference", "line_type"
            ),
            "provider", "kind", "line_number", "provider_reference", "line_type",
            "statement_amount", "statement_currency", "operation_kind",
            "operation_id", "internal_amount", "internal_currency",
            "internal_state", "detail",
        ),
        "stuck_lines": [
            [*row[:-1], row[-1].isoformat()]
            for row in report.stuck_lines.values_list(
                "item_kind", "state", "rule_name", "provider", "count",
                "sla_breaches", "oldest_since",
            )
        ],
    }  # fmt: skip


def _digest(report: DailyReport) -> str:
    canonical = json.dumps(report_content(report), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _result(report: DailyReport, *, replaced: bool, dry_run: bool):
    by_kind = dict(
        report.settlement_items.values_list("kind").annotate(n=Count("id")).order_by()
    )
    statements = list(report.statements.all())
    return DailyReportResult(
        report_id=None if dry_run else report.pk,
        report_date=report.report_date,
        dry_run=dry_run,
        replaced=replaced,
        row_count=report.operation_count,
        ledger_transaction_count=report.ledger_transaction_count,
        statement_lines=sum(s.line_count for s in statements),
        matched=sum(s.matched_count for s in statements),
        missing_internal=by_kind.get(Item.MISSING_INTERNAL, 0),
        missing_at_provider=by_kind.get(Item.MISSING_AT_PROVIDER, 0),
        amount_mismatches=by_kind.get(Item.AMOUNT_MISMATCH, 0),
        currency_mismatches=by_kind.get(Item.CURRENCY_MISMATCH, 0),
        other_day=by_kind.get(Item.OTHER_DAY, 0),
        malformed_lines=by_kind.get(Item.MALFORMED, 0),
        providers_not_checked=[
            s.provider for s in statements if s.source == Source.NOT_CHECKED
        ],
        open_stuck_cases=report.open_stuck_case_count,
        content_digest=report.content_digest,
    )


def daily_report_send(*, report: DailyReport) -> list[str]:
    """Mail the report (HTML with a plain-text part) and record who got it."""
    recipients = list(settings.DAILY_REPORT_RECIPIENTS)
    context = {"report": report, **report_sections(report)}
    message = EmailMultiAlternatives(
        subject=_subject(report),
        body=render_to_string("reconciliation/daily_report_email.txt", context),
        to=recipients,
    )
    message.attach_alternative(
        render_to_string("reconciliation/daily_report_email.html", context),
        "text/html",
    )
    message.send()
    report.emailed_to, report.emailed_at = recipients, timezone.now()
    report.save(update_fields=["emailed_to", "emailed_at"])
    log.info(
        "reconciliation.daily_report_sent",
        report_date=str(report.report_date),
        recipients=len(recipients),
    )
    return recipients


def _subject(report: DailyReport) -> str:
    flag = (
        f"{report.settlement_exception_count} settlement exceptions"
        if report.settlement_exception_count
        else "settlement matched"
    )
    return f"Reconciliation {report.report_date}: {flag}"


def report_sections(report: DailyReport) -> dict:
    """The report's rows grouped for templates (e-mail and admin page)."""
    return {
        "operation_lines": list(report.operation_lines.all()),
        "ledger_lines": list(report.ledger_lines.all()),
        "statements": list(report.statements.all()),
        "settlement_items": list(report.settlement_items.all()),
        "stuck_lines": list(report.stuck_lines.all()),
    }
