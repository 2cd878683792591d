"""The scheduled jobs, declared in code.

An app declares its jobs in its ``jobs`` module (found by
``JobsConfig.ready``)::

    job_register(
        name="detect_stuck_finance_jobs",
        func="stuck.services.stuck_detect",
        period=timedelta(minutes=5),
        grace=timedelta(minutes=10),
        max_run_time=timedelta(minutes=4),
    )

``func`` is a callable or its dotted path, called with no arguments. What it
returns is the run's result: a dict of counts, or an object with a ``counts``
mapping; anything else records no counts. ``output_check`` receives that
result and returns a sentence when the output is wrong (an empty report),
which makes the run a failure.

When the job runs is said elsewhere: a Celery beat entry in settings
(``jobs.beat.job_beat_entry``) or a Kubernetes CronJob calling
``manage.py run_job``. ``period`` and ``grace`` tell the dead man's switch how
long the job may go without a success before someone is paged.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils.module_loading import import_string

from alerts.channels import SEVERITIES


@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[[], Any] | str
    period: timedelta
    grace: timedelta
    max_run_time: timedelta
    # Page only once this many runs in a row have failed (flaky upstreams).
    alert_after: int = 1
    output_check: Callable[[Any], str | None] | None = None
    # A route name from settings.ALERT_ROUTES.
    route: str = "page"
    severity: str = "error"
    description: str = ""

    def resolve_func(self) -> Callable[[], Any]:
        return import_string(self.func) if isinstance(self.func, str) else self.func


_JOBS: dict[str, Job] = {}


def job_register(**fields) -> Job:
    """Declare a job; registering a name twice replaces the earlier one."""
    job = Job(**fields)
    if not job.name.replace("_", "").isalnum() or not job.name.islower():
        raise ValueError(f"job name {job.name!r}: use lower_case_with_underscores")
    if job.severity not in SEVERITIES:
        raise ValueError(f"job {job.name}: severity must be one of {SEVERITIES}")
    if job.alert_after < 1:
        raise ValueError(f"job {job.name}: alert_after must be at least 1")
    if min(job.period, job.max_run_time) <= timedelta(0) or job.grace < timedelta(0):
        raise ValueError(f"job {job.name}: period, grace and max_run_time")
    _JOBS[job.name] = job
    return job


def job_unregister(name: str) -> None:
    _JOBS.pop(name, None)


def job_get(name: str) -> Job:
    try:
        return _JOBS[name]
    except KeyError:
        raise LookupError(
            f"no job named {name!r}; known: {', '.join(sorted(_JOBS)) or 'none'}"
        ) from None


def job_find(name: str) -> Job | None:
    return _JOBS.get(name)


def jobs_all() -> list[Job]:
    return [_JOBS[name] for name in sorted(_JOBS)]
