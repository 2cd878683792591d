import json

from django.core.management.base import BaseCommand

from stuck.services import stuck_detect


class Command(BaseCommand):
    help = """Find finance operations stuck past their rule and keep stuck cases.

    Opens a case for every newly stuck item, refreshes the open ones and
    closes those whose item moved on. It writes stuck cases only, never an
    operation, and is safe to run at any time and as often as wanted; the
    scheduled job runs it every few minutes.

      manage.py detect_stuck_finance_jobs             # detect and record
      manage.py detect_stuck_finance_jobs --dry-run   # count, write nothing
      manage.py detect_stuck_finance_jobs --json      # result for machines
    """

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="run detection and print what it would do, then roll back",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="print the result as JSON",
        )

    def handle(self, *args, dry_run, as_json, **options):
        result = stuck_detect(dry_run=dry_run)
        if as_json:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, sort_keys=True))
            return

        prefix = "dry run, nothing written: " if dry_run else ""
        self.stdout.write(
            f"{prefix}{result.open_cases} open stuck cases "
            f"({result.opened} new, {result.reopened} reopened, "
            f"{result.closed} closed), {result.sla_breaches} past the payout SLA "
            f"({result.new_sla_breaches} new)"
        )
        for rule, count in result.by_rule.items():
            self.stdout.write(f"  {count:>8}  {rule}")
        if result.threshold_exceeded:
            self.stdout.write(
                self.style.WARNING(
                    f"{result.new_cases} new cases is above the alert "
                    f"threshold of {result.alert_threshold}"
                )
            )
