"""Test data, built through the same services the product uses."""

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from finance.services.customers import customer_create, wallet_open
from finance.services.deposits import deposit_create, deposit_succeed
from finance.services.withdrawals import payout_create, withdrawal_request

_seq = itertools.count(1)


def make_customer(**fields):
    n = next(_seq)
    values = {
        "email": f"customer{n}@example.com",
        "full_name": f"Customer {n}",
        "country": "DE",
    }
    values.update(fields)
    return customer_create(**values)


def make_wallet(*, currency="EUR", balance=0, customer=None):
    wallet = wallet_open(customer=customer or make_customer(), currency=currency)
    if balance:
        make_deposit(wallet=wallet, amount=balance, succeed=True)
        wallet.refresh_from_db()
    return wallet


def make_deposit(*, wallet=None, amount=10_000, succeed=False, provider="sandbox"):
    wallet = wallet or make_wallet()
    deposit = deposit_create(
        wallet=wallet, amount=amount, currency=wallet.currency, provider=provider
    )
    if succeed:
        deposit = deposit_succeed(
            deposit_id=deposit.pk, via="test", reason="test deposit settled"
        )
    return deposit


def make_withdrawal(*, wallet=None, amount=5_000, fee=0, provider="sandbox"):
    wallet = wallet or make_wallet(balance=amount + fee)
    return withdrawal_request(
        wallet=wallet,
        amount=amount,
        fee=fee,
        currency=wallet.currency,
        provider=provider,
        destination_label="Sparkasse ****3000",
        via="test",
    )


def make_payout(*, withdrawal=None, **withdrawal_fields):
    withdrawal = withdrawal or make_withdrawal(**withdrawal_fields)
    return payout_create(withdrawal_id=withdrawal.pk, via="test")


def make_user(username=None, **fields):
    n = next(_seq)
    return get_user_model().objects.create_user(
        username=username or f"user{n}",
        email=f"user{n}@example.com",
        password="correct horse battery staple",
        **fields,
    )


def make_job_run(*, job="nightly", outcome="success", started_at=None, **fields):
    from django.utils import timezone

    from jobs.models import JobRun

    started_at = started_at or timezone.now()
    values = {
        "trigger": JobRun.Trigger.BEAT,
        "host": "worker-1",
        "pid": 4242,
        "finished_at": None if outcome == JobRun.Outcome.RUNNING else started_at,
    }
    values.update(fields)
    return JobRun.objects.create(
        job=job, outcome=outcome, started_at=started_at, **values
    )


def make_staff(*, roles=(), superuser=False, enrolled=True, **fields):
    """A staff user holding ``roles`` (groups must exist: sync the roles first),
    with a confirmed TOTP device unless ``enrolled=False``."""
    user = make_user(is_staff=True, is_superuser=superuser, **fields)
    if roles:
        user.groups.set(Group.objects.filter(name__in=roles))
    if enrolled:
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def totp_code(user, *, steps_ahead: int = 0) -> str:
    """The code the user's authenticator app shows now (or ``steps_ahead`` later).

    A code is accepted once; a second verification within the same 30 s
    (a step-up right after logging in) needs the next one, which the device
    still accepts within its tolerance of one step.
    """
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.drift += steps_ahead
    return str(totp.token()).zfill(device.digits)


def make_stuck_payout(*, provider_reference: str | None = "auto", **withdrawal_fields):
    """A payout the provider accepted and then never settled: ``processing``."""
    from finance.services.payouts import payout_accept

    payout = make_payout(**withdrawal_fields)
    if provider_reference == "auto":
        provider_reference = f"prv_test_{payout.pk}"
    if provider_reference is None:
        return payout
    return payout_accept(
        payout_id=payout.pk, provider_reference=provider_reference, via="test"
    )


def make_override(*, target, doer, action="payout_fail", params=None, **fields):
    """An override request submitted by ``doer`` (who needs the Operator role)."""
    from overrides.services import override_request_submit

    values = {
        "reason": "provider support says the transfer was never sent",
        "ticket_reference": f"OPS-{next(_seq)}",
    }
    values.update(fields)
    return override_request_submit(
        target_kind=type(target).__name__.lower(),
        target_id=target.pk,
        action=action,
        params=params or {},
        doer=doer,
        **values,
    )
