"""Reads for stuck detection: which items each rule catches, which cases are open.

``candidate_query`` is the one indexed SELECT per rule that detection wraps
in its upsert; the benchmark times it bare, so the two never drift apart.
The SQL is assembled from table names in model metadata and fixed
fragments (hence the S608 waivers); every value is a bound parameter.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from finance.models import Deposit, Payout, WebhookDelivery, WebhookEvent, Withdrawal
from stuck.models import ItemKind, StuckCase, StuckRule

OPERATION_MODELS = {
    ItemKind.DEPOSIT: Deposit,
    ItemKind.WITHDRAWAL: Withdrawal,
    ItemKind.PAYOUT: Payout,
}

# Columns every candidate query returns, in this order.
CANDIDATE_COLUMNS = (
    "item_kind",
    "item_id",
    "state",
    "provider",
    "amount",
    "currency",
    "stuck_since",
    "born_at",
)


@dataclass(frozen=True)
class CandidateQuery:
    rule: StuckRule
    sql: str
    params: dict


def active_rules() -> list[StuckRule]:
    return list(StuckRule.objects.filter(is_active=True).order_by("pk"))


def _overridden_providers(rules: Iterable[StuckRule]) -> dict[tuple, list[str]]:
    """Per (kind, state), the providers that have a rule of their own."""
    overridden: dict[tuple, list[str]] = defaultdict(list)
    for rule in rules:
        if rule.provider:
            overridden[(rule.item_kind, rule.state)].append(rule.provider)
    return overridden


def candidate_queries(*, rules: list[StuckRule], now: datetime) -> list[CandidateQuery]:
    overridden = _overridden_providers(rules)
    return [
        candidate_query(
            rule=rule,
            now=now,
            overridden=[]
            if rule.provider
            else overridden[(rule.item_kind, rule.state)],
        )
        for rule in rules
    ]


def candidate_query(
    *, rule: StuckRule, now: datetime, overridden: list[str]
) -> CandidateQuery:
    """The items ``rule`` catches at ``now``, as one SELECT.

    A rule without a provider skips the providers in ``overridden``, which
    have a rule of their own for the same kind and state.
    """
    params = {
        "kind": rule.item_kind,
        "state": rule.state,
        "cutoff": now - rule.max_age,
        "provider": rule.provider,
        "overridden": overridden,
    }
    if rule.item_kind == ItemKind.WEBHOOK_DELIVERY:
        sql = _failed_webhooks_sql(_provider_filter(rule, overridden, "d.provider"))
        return CandidateQuery(rule, sql, params)

    table = OPERATION_MODELS[ItemKind(rule.item_kind)]._meta.db_table
    # Served by the partial index <kind>_waiting (state, state_changed_at)
    # of finance migration 0003: an index range per state and cutoff.
    sql = f"""
        SELECT %(kind)s AS item_kind, id AS item_id, state, provider,
               amount, currency, state_changed_at AS stuck_since,
               created_at AS born_at
        FROM {table}
        WHERE state = %(state)s AND state_changed_at < %(cutoff)s
          {_provider_filter(rule, overridden, "provider")}
    """  # noqa: S608
    return CandidateQuery(rule, sql, params)


def _provider_filter(rule: StuckRule, overridden: list[str], column: str) -> str:
    if rule.provider:
        return f"AND {column} = %(provider)s"
    if overridden:
        return f"AND {column} <> ALL(%(overridden)s)"
    return ""


def _failed_webhooks_sql(provider_filter: str) -> str:
    """Events whose deliveries failed on our side and that were never applied.

    A failed delivery whose event id was lost (blank) stands for itself.
    The event is named by its first failed delivery, which stays the same
    however often the provider retries.
    """
    deliveries = WebhookDelivery._meta.db_table
    events = WebhookEvent._meta.db_table
    return f"""
        SELECT %(kind)s AS item_kind, min(d.id) AS item_id,
               %(state)s AS state, d.provider, NULL::bigint AS amount,
               '' AS currency, min(d.received_at) AS stuck_since,
               min(d.received_at) AS born_at
        FROM {deliveries} d
        WHERE d.outcome = 'failed' AND d.received_at < %(cutoff)s
          {provider_filter}
          AND NOT EXISTS (
              SELECT 1 FROM {events} e
              WHERE e.provider = d.provider AND e.event_id = d.event_id
          )
        GROUP BY d.provider,
                 CASE WHEN d.event_id = '' THEN d.id::text ELSE d.event_id END
    """  # noqa: S608


def candidate_count(query: CandidateQuery) -> int:
    with connection.cursor() as cursor:
        sql = f"SELECT count(*) FROM ({query.sql}) candidate"  # noqa: S608
        cursor.execute(sql, query.params)
        return cursor.fetchone()[0]


def open_cases():
    return StuckCase.objects.filter(closed_at__isnull=True)


def open_cases_for(*, item_kind: str, item_ids: Iterable[int]) -> dict[int, StuckCase]:
    """Open cases of the given items, by item id: for a stuck badge in a list."""
    return {
        case.item_id: case
        for case in open_cases().filter(item_kind=item_kind, item_id__in=item_ids)
    }
