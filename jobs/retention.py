"""Purging what is kept only for a while: run logs, payloads, old attempts.

An app names what of its own expires in its ``jobs`` module::

    retention_register(
        name="stuck_cases",
        model="stuck.StuckCase",
        date_field="closed_at",
        default_days=180,
    )

The model is named by its label, so a target may name an app that is not
installed (it is skipped). ``clear`` empties fields instead of deleting rows
(``{"payload": None}``); ``condition`` narrows the rows further. The number
of days comes from ``settings.RETENTION_DAYS[name]`` when set there.

The purge walks the table in primary-key order, a batch at a time, each
batch its own short transaction with a lock timeout, so it never holds a
lock for long or blocks the writers of a busy table.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PurgeTarget:
    name: str
    model: str
    date_field: str
    default_days: int
    clear: dict | None = None
    condition: Q = field(default_factory=Q)

    @property
    def days(self) -> int:
        return settings.RETENTION_DAYS.get(self.name, self.default_days)


_TARGETS: dict[str, PurgeTarget] = {}


def retention_register(**fields) -> PurgeTarget:
    target = PurgeTarget(**fields)
    _TARGETS[target.name] = target
    return target


def retention_targets() -> list[PurgeTarget]:
    return list(_TARGETS.values())


def _expired(target: PurgeTarget, model, cutoff: datetime):
    rows = model.objects.filter(target.condition).filter(
        **{f"{target.date_field}__lt": cutoff}
    )
    if target.clear:
        # Rows already cleared are not candidates again.
        done = Q()
        for name, value in target.clear.items():
            # SQL NULL, not JSON null, is what clearing to None writes.
            done &= Q(**{f"{name}__isnull": True} if value is None else {name: value})
        rows = rows.exclude(done)
    return rows


def _purge_batch(target: PurgeTarget, rows, first_pk, last_pk) -> int:
    """One batch: the rows of a primary-key range that are still expired.

    The condition is checked again inside the range, so a row that changed
    since the batch was chosen (a case reopened) is left alone.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Give up on this batch rather than queue behind a long lock.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '5s'")
        batch = rows.filter(pk__gte=first_pk, pk__lte=last_pk)
        if target.clear:
            return batch.update(**target.clear)
        _, deleted = batch.delete()
        # Rows of this model only; cascaded children are not the count asked.
        return deleted.get(batch.model._meta.label, 0)


def retention_purge(
    *, now: datetime | None = None, apply: bool = True, batch_size: int | None = None
) -> dict:
    """Purge every target; return per target how many rows and batches.

    With ``apply=False`` only counts what would go.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    counts: dict[str, int] = {}
    for target in retention_targets():
        try:
            model = apps.get_model(target.model)
        except LookupError:
            log.info("retention.target_absent", target=target.name)
            continue
        rows = _expired(target, model, now - timedelta(days=target.days))
        if not apply:
            counts[f"{target.name}_expired"] = rows.count()
            continue

        purged = batches = 0
        last_pk = None
        while True:
            after = rows if last_pk is None else rows.filter(pk__gt=last_pk)
            pks = list(after.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            purged += _purge_batch(target, rows, pks[0], pks[-1])
            batches += 1
            last_pk = pks[-1]
        counts[f"{target.name}_purged"] = purged
        counts[f"{target.name}_batches"] = batches
        log.info("retention.purged", target=target.name, rows=purged, batches=batches)
    return counts
