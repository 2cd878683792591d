"""The incidents app's scheduled job and retention."""

from datetime import timedelta

from jobs.registry import job_register


def incidents_tick() -> dict:
    """Advance escalations, deliver scheduled injects, remind commanders."""
    from incidents.services.exercises import exercises_deliver_due
    from incidents.services.incidents import incidents_remind_updates
    from incidents.services.paging import pages_advance

    counts = pages_advance()
    counts["injects"] = exercises_deliver_due()
    counts["reminders"] = incidents_remind_updates()
    return counts


job_register(
    name="incidents_tick",
    func=incidents_tick,
    description="Advances escalations, delivers exercise injects, reminds "
    "commanders of status updates.",
    # Beat runs it every 30 s; a stopped tick means pages stop escalating,
    # so it pages quickly.
    period=timedelta(minutes=1),
    grace=timedelta(minutes=2),
    max_run_time=timedelta(minutes=2),
    severity="critical",
)
