"""Reads of the override workflow: the weekly count and a target's requests."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncWeek
from django.urls import reverse
from django.utils import timezone

from overrides.models import OverrideRequest
from security.models import AuditEntry

Status = OverrideRequest.Status


@dataclass(frozen=True)
class WeekOfOverrides:
    week: date  # the Monday the week starts on (UTC)
    executed: int
    failed: int
    closed_unexecuted: int  # rejected, withdrawn or expired
    break_glass: int  # fixes made by hand outside the admin (runbook)

    @property
    def manual_interventions(self) -> int:
        return self.executed + self.break_glass


def overrides_per_week(*, weeks: int = 12, now: datetime | None = None):
    """One row per week, newest first, the current week included.

    The backlog measures the ops UI by fewer manual interventions: executed
    overrides plus break-glass fixes are that number. Weeks start on Monday
    in UTC.
    """
    now = (now or timezone.now()).astimezone(UTC)
    this_monday = (now - timedelta(days=now.weekday())).date()
    start = datetime.combine(
        this_monday - timedelta(weeks=weeks - 1), datetime.min.time(), tzinfo=UTC
    )
    ran = _by_week(
        OverrideRequest.objects.filter(executed_at__gte=start),
        "executed_at",
        executed=Count("pk", filter=Q(status=Status.EXECUTED)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
    )
    closed = _by_week(
        OverrideRequest.objects.filter(closed_at__gte=start),
        "closed_at",
        n=Count("pk"),
    )
    glass = _by_week(
        AuditEntry.objects.filter(action="breakglass.completed", created_at__gte=start),
        "created_at",
        n=Count("pk"),
    )

    result = []
    for offset in range(weeks):
        week = this_monday - timedelta(weeks=offset)
        result.append(
            WeekOfOverrides(
                week=week,
                executed=ran.get(week, {}).get("executed", 0),
                failed=ran.get(week, {}).get("failed", 0),
                closed_unexecuted=closed.get(week, {}).get("n", 0),
                break_glass=glass.get(week, {}).get("n", 0),
            )
        )
    return result


def _by_week(queryset, field: str, **counts) -> dict[date, dict]:
    rows = (
        queryset.annotate(week=TruncWeek(field, tzinfo=UTC))
        .values("week")
        .annotate(**counts)
    )
    return {row["week"].date(): row for row in rows}


def overrides_for_target(kind: str, pk: int):
    return OverrideRequest.objects.filter(target_kind=kind, target_id=pk).order_by(
        "-submitted_at"
    )


def new_override_url(target) -> str:
    """Where a target's admin page links "Request an override".

    Finance registers no admin pages on this branch, so nothing links here
    yet: the operation admins add the link (and ``overrides_for_target``
    for the operation's own list of requests) when they arrive.
    """
    kind = type(target).__name__.lower()
    add = reverse("admin:overrides_overriderequest_add")
    return f"{add}?target_kind={kind}&target_id={target.pk}"


def audit_trail(override: OverrideRequest):
    """The request's audit entries, oldest first."""
    return AuditEntry.objects.filter(
        target_type=OverrideRequest._meta.label_lower, target_id=str(override.pk)
    ).order_by("id")
