from celery import shared_task
from celery.signals import before_task_publish
from django.contrib.auth import get_user_model

from jobs.registry import job_find
from jobs.services import job_run

# How long a run past its soft limit gets to record itself before the worker
# kills the process running it.
HARD_LIMIT_MARGIN_SECONDS = 60


@shared_task(name="jobs.run_job")
def run_job(name: str, trigger: str = "beat", user_id: int | None = None) -> None:
    # No Celery retry: the run is recorded and alerted on, and the schedule
    # (or an operator) starts the next one.
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    job_run(name=name, trigger=trigger, requested_by=user)


@before_task_publish.connect(dispatch_uid="jobs.time_limits")
def _job_time_limits(sender=None, headers=None, body=None, **kwargs):
    """Give every queued run its job's ``max_run_time`` as Celery time limits.

    A hung job would otherwise hold a worker slot for ever while the watchdog
    pages about it. At the soft limit Celery raises SoftTimeLimitExceeded in
    the job, which job_run records as a failure (and releases the lock); a
    job that ignores it is killed at the hard limit, a minute later, and its
    run is then closed by the watchdog. Limits given by the caller win.
    Done when the message is published, not in the beat entry, because
    settings are read before the registry exists.
    """
    if sender != "jobs.run_job" or headers is None or not body or not body[0]:
        return
    if any(headers.get("timelimit") or ()):
        return
    job = job_find(body[0][0])
    if job is None:
        return  # the run itself reports the unknown name
    soft = int(job.max_run_time.total_seconds())
    headers["timelimit"] = (soft + HARD_LIMIT_MARGIN_SECONDS, soft)
