from django.core.management.base import BaseCommand, CommandError

from jobs.services import heartbeat_ping, jobs_check


class Command(BaseCommand):
    help = """Page for overdue, hung or dead scheduled jobs, independently of beat.

    python manage.py check_job_heartbeats

    The same checks as the jobs_watchdog beat job, for a scheduler that does
    not depend on beat (the Kubernetes CronJob in deploy/k8s/, or cron). A
    dead beat shows up here as jobs_watchdog overdue. After checking it pings
    JOB_HEARTBEAT_URL_CHECK_JOB_HEARTBEATS, when set, so that an outside
    monitor notices when this check itself stops. Exits 1 when a job is
    overdue, hung or timed out (the alerts have gone out by then).
    """

    def handle(self, *args, **options):
        counts = jobs_check()
        heartbeat_ping("check_job_heartbeats", failed=False)
        summary = " ".join(f"{key}={value}" for key, value in counts.items())
        if counts["overdue"] or counts["hung"] or counts["timed_out"]:
            raise CommandError(f"scheduled jobs need attention: {summary}")
        self.stdout.write(f"scheduled jobs ok: {summary}")
