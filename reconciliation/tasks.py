"""Tasks of the deep scan and of its tickets' outbound webhook.

The weekly scan itself is the job ``deep_reconciliation`` (jobs.py).

Each is safe to run twice: a second coordinator finds the scan lock taken,
a late helper finds the scan finished or its snapshot gone, and a delivery
is claimed before it is sent.
"""

from dataclasses import asdict

import structlog
from celery import shared_task
from django.conf import settings

from reconciliation.models import DeepScan
from reconciliation.services.deep import (
    ScanBusy,
    deep_reconcile_help,
    deep_reconcile_run,
)
from reconciliation.services.tickets import (
    ticket_deliveries_sweep,
    ticket_delivery_attempt,
)

log = structlog.get_logger(__name__)


@shared_task
def deep_reconcile_resume(scan_id: int) -> dict | None:
    """Resume an interrupted scan (the admin's action), as it was started."""
    scan = DeepScan.objects.get(pk=scan_id)
    try:
        result = deep_reconcile_run(
            resume=scan_id,
            via="admin",
            parallel=settings.RECON_SCAN_PARALLEL,
            settle_tickets=scan.settle_tickets,
        )
    except ScanBusy:
        log.warning("deep_scan.skipped_busy", scan_id=scan_id)
        return None
    return asdict(result)


@shared_task
def deep_reconcile_help_task(scan_id: int) -> int:
    """Claim and run ranges of a running scan beside its coordinator."""
    return deep_reconcile_help(scan_id=scan_id)


@shared_task(bind=True, max_retries=None)
def ticket_delivery_send(self, delivery_id: int) -> bool:
    """POST a ticket event to the tracker; retried with backoff until final."""
    outcome = ticket_delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.delivered


@shared_task
def ticket_deliveries_sweep_task() -> int:
    return ticket_deliveries_sweep()
