from datetime import date
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.management import call_command

from security.models import AuditEntry
from tests.factories import make_user, make_waiver, verified_request
from waivers.demo import PEOPLE
from waivers.markdown import register_parse
from waivers.models import Waiver, WaiverStatus
from waivers.services.register import waiver_approve

pytestmark = pytest.mark.django_db

EXAMPLE = Path(django_settings.BASE_DIR) / "docs/examples/prod_env_waiver_register.md"
HEADER = (
    "| ID | Item | Risk | Owner | Deadline | Status | Approver |\n"
    "|----|------|------|-------|----------|--------|----------|\n"
)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 09:00:00+00:00", tick=False):
        yield


@pytest.fixture
def people(db):
    return {name: make_user(username=name) for name in PEOPLE}


def run_import(path, *options):
    """(exit status, output) of ``waivers import``."""
    out = StringIO()
    try:
        call_command("waivers", "import", str(path), *options, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def write(tmp_path, text, name="prod_env_waiver_register.md"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_example_register_reads_without_errors():
    register = register_parse(EXAMPLE.read_text())

    assert register.errors == []
    assert [row.reference for row in register.rows] == [f"W-00{n}" for n in range(1, 9)]
    assert register.ignored_columns == ["Ticket"]
    assert register.rows[1].fields["secret"] == "PROVIDER_SANDBOX_WEBHOOK_SECRET"
    assert register.rows[3].fields["secret"] == ""


def test_an_import_is_a_dry_run_unless_applied(people):
    status, output = run_import(EXAMPLE)

    assert status == 0
    assert "Dry run: 8 new, 0 changed, 0 unchanged" in output
    assert not Waiver.objects.exists()


def test_an_applied_import_creates_each_row_and_never_imports_an_approval(people):
    status, output = run_import(EXAMPLE, "--apply")

    assert status == 0, output
    assert Waiver.objects.count() == 8
    statuses = dict(Waiver.objects.values_list("reference", "status"))
    assert statuses["W-001"] == WaiverStatus.REQUESTED
    assert statuses["W-005"] == WaiverStatus.CLOSED
    assert statuses["W-007"] == WaiverStatus.REJECTED
    assert not Waiver.objects.filter(approved_by__isnull=False).exists()
    assert "W-001 is approved in the file; it arrives awaiting approval" in output
    w002 = Waiver.objects.get(reference="W-002")
    assert (w002.secret, w002.risk, w002.deadline) == (
        "PROVIDER_SANDBOX_WEBHOOK_SECRET",
        "high",
        date(2026, 12, 8),
    )
    assert w002.owner == people["j.okafor"]
    assert w002.compensating_control.startswith("Webhook source IPs")
    assert AuditEntry.objects.filter(action="waiver.created").count() == 8
    assert w002.history.count() == 1


def test_importing_the_same_file_twice_changes_nothing_the_second_time(people):
    run_import(EXAMPLE, "--apply")
    history = sum(w.history.count() for w in Waiver.objects.all())

    status, output = run_import(EXAMPLE, "--apply")

    assert status == 0
    assert "Imported: 0 new, 0 changed, 8 unchanged" in output
    assert sum(w.history.count() for w in Waiver.objects.all()) == history


def test_the_export_imports_back_unchanged(people, approver, tmp_path):
    run_import(EXAMPLE, "--apply")
    # Approved in opsadmin, by someone who owns none of them.
    w003 = Waiver.objects.get(reference="W-003")
    make_waiver(
        reference="W-010",
        item="Pipe | and\nnew line in the text",
        owner=people["m.keller"],
        justification="Cells keep | pipes\nand line breaks.",
        approved_by=approver,
    )
    waiver_approve(
        waiver_id=w003.pk, actor=approver, request=verified_request(approver)
    )
    exported = tmp_path / "export.md"
    call_command("waivers", "export", "--output", str(exported), stdout=StringIO())

    register = register_parse(exported.read_text())
    status, output = run_import(exported, "--apply")

    assert register.errors == []
    by_id = {row.reference: row for row in register.rows}
    for waiver in Waiver.objects.all():
        row = by_id[waiver.reference]
        assert row.status == waiver.status
        assert row.fields["deadline"] == waiver.deadline
        assert row.fields["risk"] == waiver.risk
        assert row.fields["item"] == waiver.item
        assert row.fields["justification"] == waiver.justification
        assert row.approver == (
            waiver.approved_by.get_username() if waiver.approved_by else ""
        )
    assert status == 0
    assert "Imported: 0 new, 0 changed, 9 unchanged" in output
    assert not [line for line in output.splitlines() if line.startswith("note")]


def test_each_unreadable_line_is_reported_with_its_number_and_nothing_is_written(
    people, tmp_path
):
    path = write(
        tmp_path,
        "# Register\n\n"
        + HEADER
        + "| W-1 | Backups | low | m.keller | 2026-12-20 | Approved | a.novak |\n"
        + "| W-2 | TLS on the admin | severe | m.keller | 2026-12-20 | Open | - |\n"
        + "| W-3 | WAF | low | m.keller | 31/12/2026 | Open | - |\n"
        + "| W-4 | too few cells | low | m.keller |\n"
        + "| W-1 | same ID again | low | m.keller | 2026-12-20 | Open | - |\n"
        + "| W-6 | `NOT_A_SECRET_OF_OURS` | low | m.keller | 2026-12-20 | Open | - |\n"
        + "| W-7 | Hardening | low | nobody.here | 2026-12-20 | Open | - |\n"
        + "| W-8 | Hardening | low | m.keller | 2026-12-20 | Done-ish | - |\n"
        + "|  | no ID | low | m.keller | 2026-12-20 | Open | - |\n"
        + "| W-9 | Own | low | m.keller | 2026-12-20 | Approved | m.keller |\n",
    )

    status, output = run_import(path, "--apply")

    assert status == 1
    assert not Waiver.objects.exists()
    unreadable = [line for line in output.splitlines() if line.startswith("unreadable")]
    assert unreadable == [
        "unreadable line 6: Risk 'severe' is not one of low, medium, high, critical",
        "unreadable line 7: Deadline '31/12/2026' is not a YYYY-MM-DD date",
        "unreadable line 8: has 4 cells where the header has 7",
        "unreadable line 9: ID W-1 is already on line 5",
        "unreadable line 10: Item `NOT_A_SECRET_OF_OURS` names no secret in the "
        "inventory",
        "unreadable line 11: Owner 'nobody.here' is not exactly one user",
        "unreadable line 12: Status 'Done-ish' is not one of Awaiting approval, "
        "Approved, Closed, Rejected",
        "unreadable line 13: ID '' is not an ID (letters, digits, - . _)",
        "unreadable line 14: the owner is also the approver, which is not allowed",
    ]
    assert "9 unreadable line(s): nothing written." in output


def test_columns_may_come_in_any_order_with_extra_ones(people, tmp_path):
    path = write(
        tmp_path,
        "| Status | Deadline | Notes | owner | RISK | Item | Approved by | ID |\n"
        "|:--|--|--|--|--|--|--|--:|\n"
        "| Open | 2027-01-10 | OPS-1 | l.fischer | Medium | `REDIS_URL` | - | R-1 |\n",
    )

    status, output = run_import(path, "--apply")

    assert status == 0, output
    waiver = Waiver.objects.get(reference="R-1")
    assert (waiver.secret, waiver.risk, waiver.deadline) == (
        "REDIS_URL",
        "medium",
        date(2027, 1, 10),
    )
    assert "Ignored columns: Notes" in output


def test_a_file_without_the_register_table_says_so(db, tmp_path):
    path = write(tmp_path, "| ID | Item | Risk |\n|---|---|---|\n| W-1 | x | low |\n")

    status, output = run_import(path)

    assert status == 1
    assert (
        "unreadable line 0: no table with the columns reference, item, risk, owner, "
        "deadline, status, approver was found" in output
    )


def test_a_changed_row_updates_an_open_waiver_and_withdraws_its_approval(
    people, approver, tmp_path
):
    waiver = make_waiver(
        reference="W-1",
        item="Backups untested",
        owner=people["m.keller"],
        deadline=date(2026, 12, 20),
        approved_by=approver,
    )
    path = write(
        tmp_path,
        HEADER
        + "| W-1 | Backups untested | low | m.keller | 2027-03-31 | Approved | "
        + f"{approver.username} |\n",
    )

    status, output = run_import(path, "--apply")

    waiver.refresh_from_db()
    assert status == 0, output
    assert waiver.deadline == date(2027, 3, 31)
    assert waiver.status == WaiverStatus.REQUESTED
    assert waiver.approved_by is None
    assert "W-1 changes deadline; its approval is withdrawn" in output


def test_a_status_that_differs_is_reported_not_applied(people, tmp_path):
    waiver = make_waiver(reference="W-1", item="Backups", owner=people["m.keller"])
    path = write(
        tmp_path,
        HEADER
        + f"| W-1 | Backups | low | m.keller | {waiver.deadline} | Closed | - |\n",
    )

    status, output = run_import(path, "--apply")

    waiver.refresh_from_db()
    assert status == 0
    assert waiver.status == WaiverStatus.REQUESTED
    assert "W-1 is closed in the file and requested here" in output


def test_an_open_waiver_missing_from_the_file_is_kept_and_named(people, tmp_path):
    kept = make_waiver(reference="W-99", owner=people["s.berg"])
    path = write(tmp_path, HEADER)

    status, output = run_import(path, "--apply")

    assert status == 0
    assert Waiver.objects.filter(pk=kept.pk).exists()
    assert "W-99 is open here but not in the file: kept" in output
