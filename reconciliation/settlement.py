"""Provider settlement statements: reading the CSV, and fetching it.

The statement is one CSV per provider and day::

    provider_reference,type,amount,currency,status,settled_at
    po_8f2c,payout,125000,EUR,settled,2026-03-02T14:03:11Z

``type`` is payout, deposit, payout_return or chargeback; ``amount`` a
positive integer of minor units (the type says which way the money went);
``settled_at`` ISO 8601 in UTC. ``status`` is kept as the provider wrote
it and not interpreted: the statement lists money that moved.

A line that breaks any of this is reported with its number and the reason,
never repaired or guessed at; the rest of the statement is still matched.
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import structlog

from finance.provider import ProviderError, provider_client

log = structlog.get_logger(__name__)

HEADER = ["provider_reference", "type", "amount", "currency", "status", "settled_at"]
LINE_TYPES = ("payout", "deposit", "payout_return", "chargeback")
MAX_REFERENCE = 100


class StatementError(Exception):
    """The statement as a whole cannot be used (unreadable, wrong header)."""


class StatementUnavailable(Exception):
    """The provider's statement could not be fetched."""


@dataclass(frozen=True)
class StatementLine:
    line_number: int
    provider_reference: str
    line_type: str
    amount: int
    currency: str
    status: str
    settled_at: datetime


@dataclass(frozen=True)
class MalformedLine:
    line_number: int
    reason: str
    text: str


@dataclass
class Statement:
    lines: list[StatementLine] = field(default_factory=list)
    malformed: list[MalformedLine] = field(default_factory=list)


def statement_parse(text: str) -> Statement:
    """Split a statement into good lines and malformed ones.

    Raises StatementError when the header is not exactly HEADER: then no
    column can be trusted.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None:
        raise StatementError("the statement is empty (no header line)")
    if [column.strip() for column in header] != HEADER:
        raise StatementError(
            f"the header is {','.join(header)[:200]!r}, expected {','.join(HEADER)!r}"
        )

    statement = Statement()
    first_seen: dict[tuple[str, str], int] = {}
    for row in reader:
        number = reader.line_num
        if not row or row == [""]:
            continue
        try:
            line = _parse_row(row, number)
        except ValueError as exc:
            statement.malformed.append(
                MalformedLine(number, str(exc), ",".join(row)[:200])
            )
            continue
        key = (line.provider_reference, line.line_type)
        if key in first_seen:
            statement.malformed.append(
                MalformedLine(
                    number, f"duplicate of line {first_seen[key]}", ",".join(row)[:200]
                )
            )
            continue
        first_seen[key] = number
        statement.lines.append(line)
    return statement


def _parse_row(row: list[str], number: int) -> StatementLine:
    if len(row) != len(HEADER):
        raise ValueError(f"{len(row)} fields, expected {len(HEADER)}")
    reference, line_type, amount, currency, status, settled_at = (
        value.strip() for value in row
    )
    if not reference or len(reference) > MAX_REFERENCE:
        raise ValueError("provider_reference is empty or too long")
    if line_type not in LINE_TYPES:
        raise ValueError(f"type {line_type!r} is not one of {', '.join(LINE_TYPES)}")
    if not amount.isascii() or not amount.isdigit() or int(amount) == 0:
        raise ValueError(f"amount {amount!r} is not a positive integer of minor units")
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
    if not status:
        raise ValueError("status is empty")
    return StatementLine(
        line_number=number,
        provider_reference=reference,
        line_type=line_type,
        amount=int(amount),
        currency=currency,
        status=status[:32],
        settled_at=_parse_utc(settled_at),
    )


def _parse_utc(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"settled_at {value!r} is not ISO 8601") from None
    offset = moment.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise ValueError(f"settled_at {value!r} is not in UTC")
    return moment.astimezone(UTC)


def fetch_statement(provider: str, day: date) -> str:
    """The provider's settlement CSV for ``day``, as text.

    Raises StatementUnavailable on any failure, so that a day's previous
    report stays until a statement can be had.
    """
    try:
        return provider_client(provider).fetch_settlement_csv(day)
    except ProviderError as exc:
        log.warning(
            "settlement.fetch_failed", provider=provider, day=str(day), error=str(exc)
        )
        raise StatementUnavailable(
            f"the {provider} statement for {day} could not be fetched: {exc}"
        ) from exc
