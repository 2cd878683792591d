"""Stuck detection, and what operators do about the cases it opens.

``stuck_detect`` does the scheduled job's work (stuck/jobs.py runs it): it
writes only stuck cases, never an operation, and raises on failure. It pages
nobody itself; stuck/jobs.py turns ``DetectionResult.threshold_exceeded``
into an alert.
"""

import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from finance.models import Deposit, Payout, WebhookDelivery, WebhookEvent, Withdrawal
from stuck.models import ItemKind, StuckCase, StuckCaseActivity
from stuck.selectors import CandidateQuery, active_rules, candidate_queries

log = structlog.get_logger(__name__)

# Two detection runs that overlap anyway (the framework's single-flight
# lock expired, a manual run with --dry-run) queue on this lock.
_LOCK_KEY = zlib.crc32(b"stuck.stuck_detect")

# Items whose age counts against the customer's payout SLA.
_SLA_KINDS = [ItemKind.PAYOUT, ItemKind.WITHDRAWAL]


@dataclass(frozen=True)
class DetectionResult:
    checked_at: datetime
    dry_run: bool
    rules_checked: int
    # Open cases after the run: every item that is stuck right now.
    open_cases: int
    opened: int
    reopened: int
    closed: int
    # Open cases past the payout SLA, and those that crossed it this run.
    sla_breaches: int
    new_sla_breaches: int
    # opened + reopened, and whether that is above the alert threshold.
    new_cases: int
    alert_threshold: int
    threshold_exceeded: bool
    by_rule: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["checked_at"] = self.checked_at.isoformat()
        return data

    @property
    def counts(self) -> dict:
        """What the job framework records with the run."""
        data = self.as_dict()
        del data["checked_at"], data["dry_run"]
        return data


def stuck_detect(
    *, now: datetime | None = None, dry_run: bool = False
) -> DetectionResult:
    """Open, update and close stuck cases for every active rule.

    1. Take a transaction-scoped advisory lock, so overlapping runs queue.
    2. Per active rule, one INSERT ... SELECT ... ON CONFLICT: the rule's
       indexed SELECT of stuck items feeds the upsert directly, so no item
       row travels to Python. A new item opens a case, a known one has its
       last-seen time, age and SLA flag refreshed, a closed one reopens.
       Every matched case is stamped with this run's id.
    3. One UPDATE closes the open cases this run did not stamp, recording
       the state the item moved to.
    All of it is one transaction: a failure leaves the cases as they were,
    and a dry run rolls back after counting. Running twice is harmless: the
    second run matches the same cases and changes nothing but last-seen.
    """
    _require_postgresql()
    now = now or timezone.now()
    run_id = uuid.uuid4()
    sla_cutoff = now - timedelta(hours=settings.PAYOUT_SLA_HOURS)
    threshold = settings.STUCK_ALERT_NEW_CASES_THRESHOLD

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])

        rules = active_rules()
        by_rule, opened, reopened, new_breaches = {}, 0, 0, 0
        for query in candidate_queries(rules=rules, now=now):
            counts = _upsert_cases(query, now=now, run_id=run_id, sla_cutoff=sla_cutoff)
            by_rule[query.rule.name] = counts["seen"]
            opened += counts["opened"]
            reopened += counts["reopened"]
            new_breaches += counts["new_breaches"]
        closed = _close_cases_not_seen(now=now, run_id=run_id)

        still_open = StuckCase.objects.filter(closed_at__isnull=True)
        result = DetectionResult(
            checked_at=now,
            dry_run=dry_run,
            rules_checked=len(rules),
            open_cases=still_open.count(),
            opened=opened,
            reopened=reopened,
            closed=closed,
            sla_breaches=still_open.filter(sla_breached=True).count(),
            new_sla_breaches=new_breaches,
            new_cases=opened + reopened,
            alert_threshold=threshold,
            threshold_exceeded=opened + reopened > threshold,
            by_rule=by_rule,
        )
        if dry_run:
            transaction.set_rollback(True)

    log.info(
        "stuck.detected",
        dry_run=dry_run,
        open_cases=result.open_cases,
        opened=opened,
        reopened=reopened,
        closed=closed,
        sla_breaches=result.sla_breaches,
        threshold_exceeded=result.threshold_exceeded,
    )
    return result


def _require_postgresql() -> None:
    # The upsert, FILTER and interval arithmetic below are PostgreSQL's. The
    # SQLite demo database cannot run detection; it says so instead of
    # failing half-way with a syntax error.
    if connection.vendor != "postgresql":
        raise RuntimeError("stuck detection needs PostgreSQL (set DATABASE_URL)")


_CASES = StuckCase._meta.db_table

# The prior CTE reads the cases as they were before the upsert (all parts
# of one statement share a snapshot), which is how a case is told apart as
# new, reopened or merely seen again.
_UPSERT = f"""
WITH candidate AS ({{candidates}}),
prior AS (
    SELECT c.id, c.closed_at, c.sla_breached
    FROM {_CASES} c JOIN candidate x
      ON c.item_kind = x.item_kind AND c.item_id = x.item_id
     AND c.state = x.state
),
upserted AS (
    INSERT INTO {_CASES} AS c (
        item_kind, item_id, state, current_state, rule_id, provider, amount,
        currency, stuck_since, age, sla_breached, first_seen_at, last_seen_at,
        opened_at, reopen_count, seen_in_run, closed_at, close_reason
    )
    SELECT item_kind, item_id, state, state, %(rule_id)s, provider, amount,
           currency, stuck_since, %(now)s - stuck_since,
           item_kind = ANY(%(sla_kinds)s) AND born_at < %(sla_cutoff)s,
           %(now)s, %(now)s, %(now)s, 0, %(run_id)s, NULL, ''
    FROM candidate
    ON CONFLICT (item_kind, item_id, state) DO UPDATE SET
        current_state = EXCLUDED.current_state,
        rule_id = EXCLUDED.rule_id,
        provider = EXCLUDED.provider,
        amount = EXCLUDED.amount,
        currency = EXCLUDED.currency,
        stuck_since = EXCLUDED.stuck_since,
        age = EXCLUDED.age,
        sla_breached = EXCLUDED.sla_breached,
        last_seen_at = EXCLUDED.last_seen_at,
        seen_in_run = EXCLUDED.seen_in_run,
        opened_at = CASE WHEN c.closed_at IS NULL THEN c.opened_at
                         ELSE EXCLUDED.opened_at END,
        reopen_count = c.reopen_count + (c.closed_at IS NOT NULL)::int,
        closed_at = NULL,
        close_reason = ''
    RETURNING c.id, c.sla_breached
)
SELECT count(*),
       count(*) FILTER (WHERE p.id IS NULL),
       count(*) FILTER (WHERE p.closed_at IS NOT NULL),
       count(*) FILTER (
           WHERE u.sla_breached
             AND (p.id IS NULL OR p.closed_at IS NOT NULL OR NOT p.sla_breached)
       )
FROM upserted u LEFT JOIN prior p ON p.id = u.id
"""  # noqa: S608


def _upsert_cases(
    query: CandidateQuery, *, now: datetime, run_id: uuid.UUID, sla_cutoff: datetime
) -> dict[str, int]:
    params = {
        **query.params,
        "rule_id": query.rule.pk,
        "now": now,
        "run_id": run_id,
        "sla_cutoff": sla_cutoff,
        "sla_kinds": [str(kind) for kind in _SLA_KINDS],
    }
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(candidates=query.sql), params)
        seen, opened, reopened, new_breaches = cursor.fetchone()
    return {
        "seen": seen,
        "opened": opened,
        "reopened": reopened,
        "new_breaches": new_breaches,
    }


def _state_now_sql() -> str:
    """The state each case's item is in now, by a primary-key lookup per case."""
    lookups = [
        f"WHEN '{kind}' THEN (SELECT state FROM {model._meta.db_table} "  # noqa: S608
        f"WHERE id = c2.item_id)"
        for kind, model in (
            (ItemKind.DEPOSIT, Deposit),
            (ItemKind.WITHDRAWAL, Withdrawal),
            (ItemKind.PAYOUT, Payout),
        )
    ]
    deliveries = WebhookDelivery._meta.db_table
    events = WebhookEvent._meta.db_table
    lookups.append(
        f"WHEN '{ItemKind.WEBHOOK_DELIVERY}' THEN ("  # noqa: S608
        f"SELECT CASE WHEN EXISTS (SELECT 1 FROM {events} e "
        f"WHERE e.provider = d.provider AND e.event_id = d.event_id "
        f"AND d.event_id <> '') THEN 'applied' ELSE d.outcome END "
        f"FROM {deliveries} d WHERE d.id = c2.item_id)"
    )
    return "CASE c2.item_kind " + " ".join(lookups) + " END"


_CLOSE = f"""
UPDATE {_CASES} c SET
    closed_at = %(now)s,
    current_state = COALESCE(s.state_now, c.current_state),
    close_reason = CASE
        WHEN s.state_now IS NULL THEN 'item no longer exists'
        WHEN s.state_now <> c.state THEN 'moved to ' || s.state_now
        ELSE 'no longer matches an active rule'
    END
FROM (
    SELECT c2.id, {{state_now}} AS state_now
    FROM {_CASES} c2
    WHERE c2.closed_at IS NULL AND c2.seen_in_run <> %(run_id)s
) s
WHERE c.id = s.id
"""  # noqa: S608


def _close_cases_not_seen(*, now: datetime, run_id: uuid.UUID) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            _CLOSE.format(state_now=_state_now_sql()), {"now": now, "run_id": run_id}
        )
        return cursor.rowcount


# Operators' work on a case. Each is one appended activity row; the case
# itself belongs to detection and is never saved from here.


def _add_activity(*, case: StuckCase, kind: str, actor, assignee=None, text=""):
    activity = StuckCaseActivity.objects.create(
        case=case, kind=kind, actor=actor, assignee=assignee, text=text
    )
    log.info(
        "stuck.case_worked",
        case_id=case.pk,
        kind=kind,
        actor_id=actor.pk,
        assignee_id=assignee.pk if assignee else None,
    )
    return activity


def stuck_case_acknowledge(*, case: StuckCase, actor, text: str = ""):
    """Say that someone is aware of the case (it stops counting as unseen)."""
    return _add_activity(
        case=case, kind=StuckCaseActivity.Kind.ACKNOWLEDGED, actor=actor, text=text
    )


def stuck_case_assign(*, case: StuckCase, assignee, actor, text: str = ""):
    """Make ``assignee`` (None to unassign) the one who follows the case up."""
    return _add_activity(
        case=case,
        kind=StuckCaseActivity.Kind.ASSIGNED,
        actor=actor,
        assignee=assignee,
        text=text,
    )


def stuck_case_note(*, case: StuckCase, actor, text: str):
    if not text.strip():
        raise ValueError("a note needs text")
    return _add_activity(
        case=case, kind=StuckCaseActivity.Kind.NOTE, actor=actor, text=text.strip()
    )


def stuck_case_record_retry(*, case: StuckCase, actor, text: str):
    """Keep on the case what a safe retry (stuck/retry.py) did and got."""
    return _add_activity(
        case=case, kind=StuckCaseActivity.Kind.RETRIED, actor=actor, text=text
    )
