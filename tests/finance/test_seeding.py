import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum
from django.urls import reverse

from finance.models import Customer, Deposit, Payout, Wallet, Withdrawal
from finance.seeding.run import seed_finance
from finance.states import DepositState, PayoutState, WithdrawalState

pytestmark = pytest.mark.django_db


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def planted_wallets(output: str) -> dict[int, int]:
    found = re.findall(r"wallet (\d+): cached balance ([-+]\d+)", output)
    return {int(wallet): int(error) for wallet, error in found}


def wallets_off_their_postings() -> dict[int, int]:
    off = {}
    for wallet in Wallet.objects.all():
        posted = wallet.account.postings.aggregate(total=Sum("amount"))["total"] or 0
        if wallet.balance != posted:
            off[wallet.pk] = wallet.balance - posted
    return off


def test_it_seeds_a_tiny_platform_whose_only_mismatches_are_the_planted_ones():
    output = seed("--size", "tiny", "--no-hooks")

    assert Customer.objects.count() == 60
    assert planted_wallets(output)  # wallet 7 at least
    assert wallets_off_their_postings() == planted_wallets(output)


@pytest.mark.postgres
def test_the_ledger_balances_except_the_planted_wallets():
    output = seed("--customers", "150", "--no-hooks")

    assert wallets_off_their_postings() == planted_wallets(output)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT transaction_id FROM finance_posting "
            "GROUP BY transaction_id, currency HAVING sum(amount) <> 0) t"
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.postgres
def test_every_state_and_onboarding_stage_appears():
    seed("--customers", "400", "--no-hooks")

    assert set(Deposit.objects.values_list("state", flat=True)) == set(DepositState)
    assert set(Withdrawal.objects.values_list("state", flat=True)) == set(
        WithdrawalState
    )
    assert set(Payout.objects.values_list("state", flat=True)) == set(PayoutState)
    assert {c.onboarding_stage for c in Customer.objects.all()} == {
        "signed up",
        "kyc submitted",
        "kyc approved",
        "deposited",
    }
    for model in (Deposit, Withdrawal, Payout):
        for operation in model.objects.all()[:50]:
            assert operation.created_at <= operation.state_changed_at
            assert operation.transitions.last().to_state == operation.state


@pytest.mark.postgres
def test_stuck_detection_opens_cases_for_the_stuck_rows():
    from stuck.models import StuckCase

    seed("--customers", "300")

    kinds = set(StuckCase.objects.values_list("item_kind", "state"))
    assert {
        ("deposit", "pending"),
        ("withdrawal", "requested"),
        ("payout", "created"),
        ("payout", "processing"),
        ("webhook_delivery", "failed"),
    } <= kinds


@pytest.mark.postgres
def test_a_demo_user_logs_in_with_what_was_printed(client):
    output = seed("--size", "tiny")

    block = output.split("operator (Operator)")[1]
    password = re.search(r"password: (\S+)", block).group(1)
    backup = re.search(r"backup codes: ([a-z0-9-]+)", block).group(1)
    assert client.login(username="operator", password=password)
    assert client.post(reverse("security:verify"), {"token": backup}).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.postgres
def test_a_second_run_refuses_and_says_how_to_reset():
    seed("--size", "tiny", "--no-hooks")

    with pytest.raises(CommandError, match="--reset"):
        seed("--size", "tiny", "--no-hooks")
    assert Customer.objects.count() == 60


@pytest.mark.postgres
def test_if_empty_leaves_seeded_data_alone():
    seed("--size", "tiny", "--no-hooks")

    output = seed("--if-empty")

    assert "nothing done" in output
    assert Customer.objects.count() == 60


@pytest.mark.postgres
def test_reset_wipes_and_seeds_the_same_platform_again():
    first = seed("--size", "tiny", "--no-hooks")
    emails = set(Customer.objects.values_list("email", flat=True))

    second = seed("--size", "tiny", "--no-hooks", "--reset")

    assert set(Customer.objects.values_list("email", flat=True)) == emails
    assert planted_wallets(second) == planted_wallets(first)
    assert wallets_off_their_postings() == planted_wallets(second)


@pytest.mark.postgres
def test_the_daily_report_finds_the_planted_settlement_lines():
    from reconciliation.services.daily import StatementInput, daily_report_build
    from sandbox.services import sandbox_settlement_csv

    now = datetime(2026, 12, 3, 15, tzinfo=UTC)
    result = seed_finance(seed=1, now=now, customers=600)
    assert len(result.plants.settlement) == 3
    yesterday = (now - timedelta(days=1)).date()

    report = daily_report_build(
        report_date=yesterday,
        statements={
            "sandbox": StatementInput(sandbox_settlement_csv(yesterday), "sandbox")
        },
        fetch=False,
        send_email=False,
        dry_run=True,
    )

    assert report.statement_lines > 3
    assert (report.missing_internal, report.missing_at_provider) == (1, 1)
    assert report.amount_mismatches == 1
    assert report.matched == report.statement_lines - 2


def test_it_is_refused_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="production"):
        seed("--size", "tiny")
