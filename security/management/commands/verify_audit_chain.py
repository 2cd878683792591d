from django.core.management.base import BaseCommand, CommandError

from security.audit import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Walk the audit log's hash chain and name the first entry that no "
        "longer matches. Exits non-zero when the chain is broken. Prints the "
        "head hash: keep it elsewhere (a ticket, a log archive) to detect "
        "later removal of the newest entries. Usage: manage.py verify_audit_chain"
    )

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if not report.intact:
            raise CommandError(
                f"audit chain broken at entry {report.broken_entry_id}: "
                f"{report.problem} ({report.checked} entries before it hold)"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {report.checked} entries, "
                f"head {report.head_hash}."
            )
        )
