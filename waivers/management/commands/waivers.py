"""The waiver register and the deploy gate from the command line."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from waivers.markdown import register_parse, register_render
from waivers.models import Waiver
from waivers.selectors import gate_evaluate, secret_states, waiver_as_dict
from waivers.services.importing import register_import
from waivers.services.observations import secrets_observe

HELP = """The waiver register and the deploy gate.

  manage.py waivers gate [--format text|json] [--no-observe]
      Exit 0 only when every open waiver is low risk, approved and within its
      deadline, and no required secret is missing, on a test value or overdue
      for rotation without such a waiver. Prints each blocking item (exit 1).
      Records the secrets' fingerprints first (a changed value is a rotation)
      unless --no-observe. JSON schema: docs/waivers.md.
  manage.py waivers list [--all] [--format text|json]
      The open waivers (--all: every waiver), soonest deadline first.
  manage.py waivers secrets
      The secrets inventory: status, owner, rotation date, waiver. No values.
  manage.py waivers export [--output FILE]
      The register as the team's Markdown table (prod_env_waiver_register.md).
  manage.py waivers import FILE [--apply]
      Compare FILE with the register and print what would change, by ID; with
      --apply, write it. Any unreadable line is reported with its number and
      nothing is written. Status and approvals are never imported.
"""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)

        gate = commands.add_parser("gate", help="exit 0 only when production is done")
        gate.add_argument("--format", choices=["text", "json"], default="text")
        gate.add_argument(
            "--no-observe",
            action="store_true",
            help="do not record fingerprints first (read-only)",
        )

        listing = commands.add_parser("list", help="the open waivers")
        listing.add_argument("--all", action="store_true", help="closed ones too")
        listing.add_argument("--format", choices=["text", "json"], default="text")

        commands.add_parser("secrets", help="the secrets inventory and its state")

        export = commands.add_parser("export", help="the register as Markdown")
        export.add_argument("--output", help="write to this file instead of stdout")

        importing = commands.add_parser("import", help="read the Markdown register")
        importing.add_argument("file")
        importing.add_argument(
            "--apply", action="store_true", help="write (default: dry run)"
        )

    def handle(self, *args, **options):
        handler = getattr(self, "_" + options["command"])
        return handler(options)

    # --- gate ----------------------------------------------------------------

    def _gate(self, options):
        if not options["no_observe"]:
            secrets_observe(source="gate")
        report = gate_evaluate()
        if options["format"] == "json":
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self._gate_text(report)
        if not report.passed:
            # A plain exit status for pipelines; the output above says why.
            sys.exit(1)

    def _gate_text(self, report):
        for item in report.blocking:
            self.stdout.write(f"BLOCKING  {item.kind:8} {item.id}: {item.message}")
        for item in report.notes:
            self.stdout.write(f"note      {item.kind:8} {item.id}: {item.message}")
        open_count = len(report.waivers)
        if report.passed:
            self.stdout.write(
                self.style.SUCCESS(
                    f"PASSED: {open_count} open waiver(s), all low risk, approved "
                    "and within their deadline; every secret in order."
                )
            )
        else:
            self.stdout.write(
                self.style.ERROR(f"BLOCKED: {len(report.blocking)} blocking item(s).")
            )

    # --- list, secrets ---------------------------------------------------------

    def _list(self, options):
        waivers = Waiver.objects.select_related("owner", "approved_by")
        if not options["all"]:
            waivers = waivers.open()
        today = timezone.localdate()
        if options["format"] == "json":
            rows = [waiver_as_dict(w, today) for w in waivers]
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for waiver in waivers:
            days = waiver.days_to_deadline(today) if waiver.is_open else None
            when = "" if days is None else f" ({days:+d} days)"
            approver = waiver.approved_by.get_username() if waiver.approved_by else "-"
            status = waiver.get_status_display()
            self.stdout.write(
                f"{waiver.reference:8} {waiver.risk:8} {status:17} "
                f"{waiver.deadline}{when:12} {waiver.owner.get_username():14} "
                f"{approver:14} {waiver.item}"
            )
        if not waivers:
            self.stdout.write("No waivers.")

    def _secrets(self, options):
        for state in secret_states():
            due = f"{state.rotation_due:%Y-%m-%d}" if state.rotation_due else "-"
            flag = " OVERDUE" if state.overdue else ""
            waiver = state.waiver.reference if state.waiver else "-"
            self.stdout.write(
                f"{state.spec.name:36} {state.status:10} {state.spec.owner:12} "
                f"due {due}{flag:8} waiver {waiver}"
            )
            for problem in state.problems:
                self.stdout.write(f"{'':36} - {problem}")

    # --- export, import ----------------------------------------------------------

    def _export(self, options):
        waivers = Waiver.objects.select_related("owner", "approved_by").order_by(
            "reference"
        )
        text = register_render(
            waivers,
            title="Production environment waiver register",
            generated_at=timezone.now().isoformat(timespec="seconds"),
        )
        if options["output"]:
            Path(options["output"]).write_text(text)
            self.stdout.write(f"Wrote {len(waivers)} waiver(s) to {options['output']}.")
        else:
            self.stdout.write(text, ending="")

    def _import(self, options):
        path = Path(options["file"])
        try:
            text = path.read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        register = register_parse(text)
        report = register_import(
            register=register, apply=options["apply"], source=path.name
        )

        if register.ignored_columns:
            self.stdout.write("Ignored columns: " + ", ".join(register.ignored_columns))
        for error in report.errors:
            self.stdout.write(self.style.ERROR(f"unreadable {error}"))
        for label, lines in (
            ("create", report.created),
            ("update", report.updated),
            ("same", report.unchanged),
            ("note", report.notices),
        ):
            for line in lines:
                self.stdout.write(f"{label:7} {line}")

        counts = (
            f"{len(report.created)} new, {len(report.updated)} changed, "
            f"{len(report.unchanged)} unchanged"
        )
        if report.errors:
            self.stdout.write(
                self.style.ERROR(
                    f"{len(report.errors)} unreadable line(s): nothing written."
                )
            )
            sys.exit(1)
        if report.applied:
            self.stdout.write(self.style.SUCCESS(f"Imported: {counts}."))
        else:
            self.stdout.write(f"Dry run: {counts}. Run again with --apply to write.")
