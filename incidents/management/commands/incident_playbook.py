import sys

from django.core.management.base import BaseCommand, CommandError

from incidents.playbook import PLAYBOOK_PATH, playbook_markdown


class Command(BaseCommand):
    help = (
        "Write docs/incident-playbook.md from the severities, matrix, "
        "rotations, rollback authority and scenarios in the database. Prints "
        "it by default. Usage: manage.py incident_playbook [--write | --check]"
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--write", action="store_true", help=f"save it to {PLAYBOOK_PATH}"
        )
        action.add_argument(
            "--check",
            action="store_true",
            help="exit non-zero when the file differs from the data",
        )

    def handle(self, *args, write, check, **options):
        text = playbook_markdown()
        if write:
            PLAYBOOK_PATH.write_text(text)
            self.stdout.write(self.style.SUCCESS(f"Wrote {PLAYBOOK_PATH}."))
        elif check:
            current = PLAYBOOK_PATH.read_text() if PLAYBOOK_PATH.exists() else ""
            if current != text:
                raise CommandError(
                    f"{PLAYBOOK_PATH} does not match the data: run "
                    "manage.py incident_playbook --write (on the seeded data) "
                    "and commit it"
                )
            self.stdout.write(self.style.SUCCESS("The playbook matches the data."))
        else:
            sys.stdout.write(text)
