from django.core.management.base import BaseCommand, CommandError

from security.roles import RoleDefinitionError
from security.services import roles_sync


class Command(BaseCommand):
    help = (
        "Make each role's group hold exactly the permissions that the apps' "
        "roles.py files grant it. Dry run by default: shows what would change. "
        "Usage: manage.py sync_roles [--apply]"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--apply", action="store_true", help="write the changes (audited)"
        )

    def handle(self, *args, apply, **options):
        try:
            changes = roles_sync(apply=apply)
        except RoleDefinitionError as exc:
            raise CommandError(f"role definitions are wrong: {exc}") from exc

        verb = "changed" if apply else "would change"
        changed = [change for change in changes if change.changed]
        for change in changes:
            if not change.changed:
                self.stdout.write(f"{change.role}: unchanged")
                continue
            what = ["created"] if change.created else []
            what += [f"+{perm}" for perm in change.added]
            what += [f"-{perm}" for perm in change.removed]
            self.stdout.write(f"{change.role}: {verb}: {' '.join(what)}")
        if not changed:
            self.stdout.write(
                self.style.SUCCESS(f"No changes: all {len(changes)} roles match.")
            )
        elif apply:
            self.stdout.write(self.style.SUCCESS(f"{len(changed)} role(s) updated."))
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"Dry run: {len(changed)} role(s) differ; --apply to write."
                )
            )
