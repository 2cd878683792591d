"""The break-glass SQL of docs/runbook.md, run through psql exactly as written.

Only the inputs of step 1 are replaced. The test database must see what
the test planted, hence transaction=True; psql connects as the tests do.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.db.models import Sum

from finance.models import (
    LedgerTransaction,
    Posting,
    Wallet,
    Withdrawal,
)
from finance.services.payouts import payout_pay
from overrides.selectors import overrides_per_week
from security.audit import audit_chain_verify, audit_record
from security.models import AuditEntry
from tests.factories import make_staff, make_stuck_payout

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

RUNBOOK = Path(settings.BASE_DIR) / "docs" / "runbook.md"
SECTION = "## Fixing a stuck finance state"
HAPPY_PATH = [f"step {n}" for n in range(1, 8)]


def runbook_blocks() -> dict[str, str]:
    """The section's SQL blocks by name ("step 1" ... "step 7", "abort")."""
    text = RUNBOOK.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    blocks = {}
    for block in re.findall(r"```sql\n(.*?)```", section, re.DOTALL):
        name = re.match(r"-- breakglass (step \d+|abort)\b", block)
        assert name, f"an SQL block without a step name: {block[:60]!r}"
        blocks[name.group(1)] = block
    return blocks


def _script(names, **inputs) -> str:
    blocks = runbook_blocks()
    step_one = blocks["step 1"]
    for name, value in inputs.items():
        literal = (
            value if isinstance(value, int) else "'" + value.replace("'", "''") + "'"
        )
        step_one, found = re.subn(
            rf"^\\set {name} .*$", f"\\\\set {name} {literal}", step_one, flags=re.M
        )
        assert found == 1, f"step 1 has no \\set {name}"
    blocks["step 1"] = step_one
    return "\n".join(blocks[name] for name in names)


def psql(names, **inputs) -> subprocess.CompletedProcess:
    db = connection.settings_dict
    command = [
        "psql",
        "--no-psqlrc",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        db["HOST"] or "127.0.0.1",
        "-p",
        str(db["PORT"] or 5432),
        "-U",
        db["USER"],
        "-d",
        db["NAME"],
    ]
    return subprocess.run(  # noqa: S603 - our own fixed command
        command,
        input=_script(names, **inputs),
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": db["PASSWORD"] or ""},
        timeout=60,
        check=False,
    )


@pytest.fixture
def people():
    return {
        "doer": make_staff(username="dana.doer").username,
        "watcher": make_staff(username="walt.watcher").username,
    }


def _inputs(payout, people, **more):
    return {
        "payout_id": payout.pk,
        "ticket": "OPS-4242",
        "reason": "Provider support (call, 14:05) says the transfer failed; "
        "the admin's MFA is down. L'équipe confirme.",
        **people,
        **more,
    }


def _books_balance() -> None:
    unbalanced = (
        Posting.objects.values("transaction_id", "currency")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
    )
    assert list(unbalanced) == []
    for wallet in Wallet.objects.all():
        posted = Posting.objects.filter(account_id=wallet.account_id).aggregate(
            total=Sum("amount")
        )["total"]
        assert wallet.balance == (posted or 0), wallet


def _snapshot(payout):
    payout.refresh_from_db()
    withdrawal = Withdrawal.objects.get(pk=payout.withdrawal_id)
    wallet = Wallet.objects.get(pk=payout.wallet_id)
    return (
        payout.state,
        payout.version,
        withdrawal.state,
        wallet.balance,
        LedgerTransaction.objects.count(),
    )


def test_the_runbook_has_every_step_in_order():
    assert list(runbook_blocks()) == [*HAPPY_PATH[:6], "abort", "step 7"]


def test_the_breakglass_sql_fails_a_stuck_payout_and_keeps_the_books(people):
    payout = make_stuck_payout(amount=5_000, fee=150)
    audit_record(actor=None, action="test.before", reason="a chain to extend")
    assert Wallet.objects.get(pk=payout.wallet_id).balance == 0

    run = psql(HAPPY_PATH, **_inputs(payout, people))

    assert run.returncode == 0, run.stderr
    # Step 5's two checks and step 7's reconciliation find nothing.
    assert run.stdout.count("(0 rows)") == 3, run.stdout
    payout.refresh_from_db()
    assert (payout.state, payout.version) == ("failed", 3)
    assert Withdrawal.objects.get(pk=payout.withdrawal_id).state == "failed"
    assert Wallet.objects.get(pk=payout.wallet_id).balance == 5_150
    _books_balance()
    release = LedgerTransaction.objects.get(
        idempotency_key=f"withdrawal:{payout.withdrawal_id}:release"
    )
    assert release.created_by.username == "dana.doer"
    assert sorted(release.postings.values_list("amount", flat=True)) == [
        -5_000,
        -150,
        5_150,
    ]


def test_the_fix_is_in_the_audit_chain_and_the_history(people):
    payout = make_stuck_payout()
    audit_record(actor=None, action="test.before", reason="a chain to extend")

    run = psql(HAPPY_PATH, **_inputs(payout, people))

    assert run.returncode == 0, run.stderr
    call_command("verify_audit_chain")  # raises CommandError when broken
    started, completed = AuditEntry.objects.filter(
        action__startswith="breakglass."
    ).order_by("id")
    assert (started.action, completed.action) == (
        "breakglass.started",
        "breakglass.completed",
    )
    assert completed.actor.username == "dana.doer"
    assert completed.before["payout_state"] == "processing"
    assert completed.after["watcher"] == "walt.watcher"
    latest = payout.history.order_by("-history_id").first()
    assert latest.state == "failed"
    assert latest.history_change_reason.startswith("break-glass OPS-4242")
    assert latest.history_user.username == "dana.doer"
    assert payout.transitions.last().via == "breakglass"
    assert overrides_per_week(weeks=1)[0].break_glass == 1


def test_the_breakglass_sql_refuses_a_payout_that_is_not_stuck(people):
    payout = make_stuck_payout()
    payout_pay(payout_id=payout.pk, via="webhook", reason="paid after all")
    before = _snapshot(payout)

    refused = psql(HAPPY_PATH[:4], **_inputs(payout, people))
    aborted = psql(["step 1", "abort"], **_inputs(payout, people))

    assert refused.returncode != 0
    assert "not a stuck payout" in refused.stderr
    assert aborted.returncode == 0, aborted.stderr
    assert _snapshot(payout) == before
    assert audit_chain_verify().intact
    assert list(
        AuditEntry.objects.filter(action__startswith="breakglass.")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["breakglass.started", "breakglass.aborted"]


def test_on_stop_the_rollback_leaves_everything_as_it_was(people):
    payout = make_stuck_payout()
    before = _snapshot(payout)

    run = psql([*HAPPY_PATH[:5], "abort"], **_inputs(payout, people))

    assert run.returncode == 0, run.stderr
    assert _snapshot(payout) == before
    assert not AuditEntry.objects.filter(action="breakglass.completed").exists()
    assert audit_chain_verify().intact


def test_the_watcher_must_be_someone_else(people):
    payout = make_stuck_payout()
    before = _snapshot(payout)

    run = psql(HAPPY_PATH, **_inputs(payout, people, watcher=people["doer"]))

    assert run.returncode != 0
    assert "the watcher must be another active user" in run.stderr
    assert _snapshot(payout) == before


def test_the_audit_function_appends_no_other_kind_of_entry(people):
    with (
        pytest.raises(DatabaseError, match=r"only breakglass\.\* entries"),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT breakglass_audit_append(%s, 'override.approved', 'forged')",
            [people["doer"]],
        )
    assert not AuditEntry.objects.exists()
