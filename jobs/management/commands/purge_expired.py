from django.core.management.base import BaseCommand

from jobs.retention import retention_purge, retention_targets


class Command(BaseCommand):
    help = """Purge data past its retention period (a dry run unless --apply).

    python manage.py purge_expired            # count what would be purged
    python manage.py purge_expired --apply    # purge, in small batches

    The retention_purge job does the same every night. Periods come from
    RETENTION_<TARGET>_DAYS (settings.RETENTION_DAYS).
    """

    def add_arguments(self, parser):
        parser.add_argument("--apply", action="store_true")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, apply, batch_size, **options):
        for target in retention_targets():
            self.stdout.write(f"{target.name}: {target.model} after {target.days} days")
        counts = retention_purge(apply=apply, batch_size=batch_size)
        for key, value in counts.items():
            self.stdout.write(f"  {key}={value}")
        if not apply:
            self.stdout.write("dry run: nothing purged (use --apply)")
