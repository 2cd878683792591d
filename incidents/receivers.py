"""Incidents declared by other apps' events."""

from django.conf import settings
from django.dispatch import receiver

from incidents.models import Incident
from jobs.signals import job_failed


@receiver(job_failed, dispatch_uid="incidents.declare_from_failing_job")
def declare_from_failing_job(sender, *, job, run, consecutive_failures, muted, **_):
    """A failing job whose severity is in INCIDENTS_JOB_SEVERITY_LEVELS
    declares an incident at that level (one open incident per job).

    The job's own alert has already gone to the team's route, so the first
    responder may hear twice (the alert, then the incident's page). Kept so
    on purpose: the alert keeps working when this app does not.
    """
    from incidents.services.incidents import incident_declare

    level = settings.INCIDENTS_JOB_SEVERITY_LEVELS.get(job.severity)
    if level is None or muted:
        return
    first_line = (run.error.splitlines() or ["no error text"])[0][:150]
    incident_declare(
        title=f"Scheduled job {job.name} is failing: {first_line}",
        level=level,
        summary=(
            f"{consecutive_failures} failed run(s) in a row; last run {run.pk} "
            f"on {run.host}. {job.description}"
        ).strip(),
        source=Incident.Source.JOB,
        source_key=f"job:{job.name}",
    )
