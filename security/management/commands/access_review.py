import csv
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from security.selectors import CSV_HEADER, access_review, access_review_csv_row


class Command(BaseCommand):
    help = (
        "List every active staff or superuser account with its roles, "
        "permissions outside roles, MFA devices, last login and findings. "
        "Prints a table and writes a CSV (default var/access-review-DATE.csv). "
        "--strict exits non-zero when any finding stands. "
        "Usage: manage.py access_review [--csv PATH] [--strict]"
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", dest="csv_path", help="where to write the CSV")
        parser.add_argument(
            "--strict", action="store_true", help="fail when there is any finding"
        )

    def handle(self, *args, csv_path, strict, **options):
        rows = access_review()
        table = [CSV_HEADER, *(access_review_csv_row(row) for row in rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(CSV_HEADER))]
        for line in table:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(line, widths, strict=True)
                )
            )

        path = Path(
            csv_path or settings.VAR_DIR / f"access-review-{timezone.now():%Y%m%d}.csv"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows(table)

        findings = sum(len(row.findings) for row in rows)
        self.stdout.write(
            f"{len(rows)} account(s), {findings} finding(s); CSV written to {path}"
        )
        if strict and findings:
            raise CommandError(f"access review: {findings} finding(s) stand")
