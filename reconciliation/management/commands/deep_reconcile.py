import time

from django.core.management.base import BaseCommand, CommandError

from reconciliation.models import Check, Finding
from reconciliation.services.deep import ScanBusy, deep_reconcile_run

HELP = """Scan the whole ledger against wallets and operations (deep reconciliation).

A dry run by default: the scan records its findings and prints them, and
leaves tickets alone. With --apply it also opens, extends and closes
reconciliation tickets (and pushes them to the tracker webhook), as the
weekly scheduled scan does.

  manage.py deep_reconcile                    # full scan in this process
  manage.py deep_reconcile --apply            # ... and settle tickets
  manage.py deep_reconcile --parallel 4       # this process + 3 Celery workers
  manage.py deep_reconcile --parallel 2 --threads   # + 1 thread here
  manage.py deep_reconcile --ranges 64        # cut each check into 64 ranges
  manage.py deep_reconcile --range-size 50000 # or into ranges of 50,000 ids
  manage.py deep_reconcile --check wallets    # only some checks
  manage.py deep_reconcile --resume 12        # finish interrupted scan 12

Ctrl-C interrupts the scan; --resume then runs exactly the ranges not done.
"""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, *args, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(*args, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--apply", action="store_true", help="settle tickets")
        size = parser.add_mutually_exclusive_group()
        size.add_argument("--ranges", type=int, help="ranges per check")
        size.add_argument("--range-size", type=int, help="ids per range")
        parser.add_argument(
            "--parallel", type=int, default=1, help="processes scanning at once"
        )
        parser.add_argument(
            "--threads",
            action="store_true",
            help="run the extra workers as threads here instead of Celery tasks",
        )
        parser.add_argument(
            "--check",
            action="append",
            choices=Check.values,
            dest="checks",
            help="run only this check (repeatable)",
        )
        parser.add_argument("--resume", type=int, metavar="SCAN_ID")

    def handle(self, *args, **options):
        for name in ("ranges", "range_size", "parallel"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
        if options["resume"] and (
            options["checks"] or options["ranges"] or options["range_size"]
        ):
            raise CommandError("a resumed scan keeps its checks and ranges")

        self.last_print = 0.0
        try:
            result = deep_reconcile_run(
                checks=options["checks"],
                ranges=options["ranges"],
                range_size=options["range_size"],
                parallel=options["parallel"],
                workers="threads" if options["threads"] else "celery",
                resume=options["resume"],
                settle_tickets=options["apply"],
                via="command",
                progress=self.progress,
            )
        except ScanBusy as exc:
            raise CommandError(str(exc)) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            self.stderr.write("\ninterrupted; resume with --resume <scan id>")
            raise SystemExit(130) from None

        self.stdout.write(
            f"scan {result.scan_id} {result.status}: {result.ranges_done}/"
            f"{result.ranges_total} ranges, {result.rows_scanned:,} rows, "
            f"{result.findings} findings"
        )
        self.report_findings(result.scan_id)
        if options["apply"]:
            self.stdout.write(
                f"tickets: {result.tickets_opened} opened, "
                f"{result.tickets_updated} updated, {result.tickets_closed} closed"
            )
        else:
            self.stdout.write("dry run: tickets left alone (use --apply)")

    def progress(self, scan):
        now = time.monotonic()
        if now - self.last_print < 1 and scan.ranges_done < scan.ranges_total:
            return
        self.last_print = now
        self.stdout.write(
            f"scan {scan.pk}: {scan.ranges_done}/{scan.ranges_total} ranges, "
            f"{scan.rows_scanned:,} rows, {scan.findings_count} findings"
        )

    def report_findings(self, scan_id: int, limit: int = 50):
        findings = Finding.objects.filter(scan_id=scan_id).order_by(
            "invariant", "subject_key"
        )
        for finding in findings[:limit]:
            self.stdout.write(
                f"  {finding.invariant:22} {finding.subject_key:32} "
                f"{finding.currency:3} expected {finding.expected:>14,} "
                f"actual {finding.actual:>14,} difference {finding.difference:>+14,}"
            )
        more = findings.count() - limit
        if more > 0:
            self.stdout.write(f"  ... and {more} more (see the admin)")
