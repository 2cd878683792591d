import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reconciliation.services import StatementInput, daily_report_build
from reconciliation.settlement import StatementError, StatementUnavailable


class Command(BaseCommand):
    help = """Build the daily reconciliation report of one UTC day, store it
    (replacing that day's earlier report) and e-mail it.

    Settlement statements come from --settlement-file (one per provider) or
    are fetched from every configured provider that has no file.

      manage.py daily_reconciliation_report                    # yesterday
      manage.py daily_reconciliation_report --date 2026-03-02
      manage.py daily_reconciliation_report --date 2026-03-02 \\
          --settlement-file sandbox=/tmp/sandbox-2026-03-02.csv --no-fetch
      manage.py daily_reconciliation_report --dry-run          # store nothing
    """

    def add_arguments(self, parser):
        parser.add_argument(
            "--date",
            type=_day,
            help="the UTC day, YYYY-MM-DD (default: yesterday in UTC)",
        )
        parser.add_argument(
            "--settlement-file",
            action="append",
            default=[],
            metavar="[PROVIDER=]PATH",
            help="a provider's settlement CSV; PROVIDER may be left out when "
            "only one provider is configured (repeatable)",
        )
        parser.add_argument(
            "--no-fetch",
            action="store_true",
            help="do not fetch statements: providers without a file are "
            "reported as not checked",
        )
        parser.add_argument("--no-email", action="store_true", help="do not send")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="build and print the summary, then roll back; nothing is sent",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print JSON"
        )

    def handle(self, *args, **options):
        day = options["date"] or datetime.now(UTC).date() - timedelta(days=1)
        statements = dict(_statement(spec) for spec in options["settlement_file"])
        try:
            result = daily_report_build(
                report_date=day,
                statements=statements,
                fetch=not options["no_fetch"],
                send_email=not options["no_email"],
                dry_run=options["dry_run"],
            )
        except (StatementError, StatementUnavailable) as exc:
            raise CommandError(str(exc)) from exc

        if options["as_json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, sort_keys=True))
            return
        prefix = "dry run, nothing stored: " if result.dry_run else ""
        self.stdout.write(
            f"{prefix}reconciliation {day}: {result.row_count} operations, "
            f"{result.ledger_transaction_count} journal transactions, "
            f"{result.statement_lines} statement lines ({result.matched} matched)"
        )
        self.stdout.write(
            f"  missing on our side {result.missing_internal}, missing at the "
            f"provider {result.missing_at_provider}, amount mismatches "
            f"{result.amount_mismatches}, currency mismatches "
            f"{result.currency_mismatches}, booked another day {result.other_day}, "
            f"malformed lines {result.malformed_lines}"
        )
        if result.providers_not_checked:
            self.stdout.write(
                "  not checked: " + ", ".join(result.providers_not_checked)
            )
        if result.emailed_to:
            self.stdout.write(f"  e-mailed to {len(result.emailed_to)} recipients")
        if result.row_count == 0:
            self.stdout.write(self.style.WARNING("  no operations at all this day"))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--date {text!r} is not YYYY-MM-DD") from None


def _statement(spec: str) -> tuple[str, StatementInput]:
    provider, sep, path = spec.partition("=")
    if not sep:
        if len(settings.PROVIDERS) != 1:
            raise CommandError(
                f"--settlement-file {spec}: name the provider (PROVIDER=PATH), "
                f"several are configured"
            )
        provider, path = next(iter(settings.PROVIDERS)), spec
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    return provider, StatementInput(text=text, source_name=Path(path).name)
