"""Celery beat entries for registered jobs, used by opsadmin/settings.py.

Settings are read before any app is loaded, so this module imports nothing
from Django.
"""


def job_beat_entry(name: str, schedule, *, expires: int | None = None) -> dict:
    """The CELERY_BEAT_SCHEDULE value that runs job ``name`` on ``schedule``.

    ``expires`` (seconds) drops a queued run that no worker picked up in time,
    so a worker outage does not end in a burst of stale runs; it defaults to
    the schedule's own interval where beat can tell it.
    """
    if expires is None:
        every = getattr(schedule, "run_every", schedule)
        if hasattr(every, "total_seconds"):
            every = every.total_seconds()
        # A crontab has no single interval: an hour is a safe bound for ours.
        expires = int(every) if isinstance(every, int | float) else 3600
    return {
        "task": "jobs.run_job",
        "schedule": schedule,
        "args": (name,),
        "kwargs": {"trigger": "beat"},
        "options": {"expires": expires},
    }
