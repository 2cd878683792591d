import signal
import sys

from django.core.management.base import BaseCommand, CommandError

from jobs.models import JobRun
from jobs.registry import jobs_all
from jobs.services import job_run


class Command(BaseCommand):
    help = """Run one scheduled job now, recorded and single-flight.

    python manage.py run_job detect_stuck_finance_jobs --trigger cron
    python manage.py run_job --list

    What the Kubernetes CronJobs and plain cron call. Exits 1 when the run
    fails, 0 when it succeeds or when another copy of the job is already
    running (this one then does nothing and says so).
    """

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?")
        parser.add_argument(
            "--trigger",
            choices=[JobRun.Trigger.CRON, JobRun.Trigger.MANUAL],
            default=JobRun.Trigger.MANUAL,
        )
        parser.add_argument("--list", action="store_true", help="list the jobs")

    def handle(self, *args, name=None, trigger, list=False, **options):
        if list or not name:
            for job in jobs_all():
                self.stdout.write(f"{job.name}\t{job.description}")
            return
        # Kubernetes stops a pod past activeDeadlineSeconds with SIGTERM:
        # turn it into SystemExit so the run is recorded and its lock freed.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
        try:
            run = job_run(name=name, trigger=trigger)
        except LookupError as exc:
            raise CommandError(str(exc)) from None

        summary = f"{name}: run {run.pk} {run.outcome}"
        if run.outcome == JobRun.Outcome.SKIPPED_LOCKED:
            self.stdout.write(f"{summary}: another copy is running, nothing done")
            return
        if run.outcome != JobRun.Outcome.SUCCESS:
            raise CommandError(f"{summary}: {run.error}")
        self.stdout.write(f"{summary} in {run.duration_ms} ms {run.counts}")
