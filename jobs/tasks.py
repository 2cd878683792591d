from celery import shared_task
from django.contrib.auth import get_user_model

from jobs.services import job_run


@shared_task(name="jobs.run_job")
def run_job(name: str, trigger: str = "beat", user_id: int | None = None) -> None:
    # No Celery retry: the run is recorded and alerted on, and the schedule
    # (or an operator) starts the next one.
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    job_run(name=name, trigger=trigger, requested_by=user)
