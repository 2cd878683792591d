"""Background work of the override workflow. Each task is safe to run twice."""

import structlog
from celery import shared_task

from overrides.models import OverrideRequest
from overrides.notifications import NotificationFailed, notify_approvers

log = structlog.get_logger(__name__)


@shared_task(
    autoretry_for=(NotificationFailed,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=6,
)
def override_notify_approvers(override_id: int) -> None:
    """Tell the approvers about a submitted request (skipped once it is settled)."""
    override = OverrideRequest.objects.select_related("doer").get(pk=override_id)
    if override.status != OverrideRequest.Status.SUBMITTED:
        log.info("override.notify_skipped", override_id=override_id)
        return
    notify_approvers(override)
