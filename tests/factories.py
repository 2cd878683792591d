"""Test data, built through the same services the product uses."""

import functools
import itertools
import time
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.utils import timezone
from django_otp.middleware import is_verified
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from finance.models import WebhookDelivery, WebhookEvent
from finance.services.customers import customer_create, wallet_open
from finance.services.deposits import deposit_create, deposit_succeed
from finance.services.payouts import payout_accept, payout_pay
from finance.services.withdrawals import payout_create, withdrawal_request
from security.stepup import VERIFIED_AT_SESSION_KEY
from waivers.services.register import waiver_approve, waiver_create

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


def make_deposit(
    *,
    wallet=None,
    amount=10_000,
    succeed=False,
    provider="sandbox",
    provider_reference=None,
):
    wallet = wallet or make_wallet()
    deposit = deposit_create(
        wallet=wallet,
        amount=amount,
        currency=wallet.currency,
        provider=provider,
        provider_reference=provider_reference,
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


def make_payout(
    *,
    withdrawal=None,
    accept=False,
    pay=False,
    provider_reference=None,
    **withdrawal_fields,
):
    """A payout, optionally accepted by the provider and then paid."""
    withdrawal = withdrawal or make_withdrawal(**withdrawal_fields)
    payout = payout_create(withdrawal_id=withdrawal.pk, via="test")
    reference = provider_reference or f"prov-payout-{payout.pk}"
    if accept or pay:
        payout = payout_accept(
            payout_id=payout.pk, provider_reference=reference, via="test"
        )
    if pay:
        payout = payout_pay(payout_id=payout.pk, via="test", reason="test paid")
    return payout


def make_webhook_delivery(
    *, event_id="", outcome="failed", provider="sandbox", applied=False, **fields
):
    """A delivery as the webhook view records it; ``applied`` records the event."""
    delivery = WebhookDelivery.objects.create(
        provider=provider,
        event_id=event_id,
        event_type=fields.pop("event_type", "payout.paid"),
        outcome=outcome,
        http_status=fields.pop("http_status", 500 if outcome == "failed" else 200),
        **fields,
    )
    if applied:
        WebhookEvent.objects.create(
            provider=provider, event_id=event_id, event_type=delivery.event_type
        )
    return delivery


# Every factory user's password.
PASSWORD = "correct horse battery staple"


def make_user(username=None, **fields):
    n = next(_seq)
    fields.setdefault("email", f"user{n}@example.com")
    return get_user_model().objects.create_user(
        username=username or f"user{n}",
        password=PASSWORD,
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


def verified_request(user, *, method="post"):
    """A request of ``user`` who has just proven a second factor, for services
    that check step-up themselves (tests through the admin need no such thing)."""
    request = getattr(RequestFactory(), method)("/")
    user.otp_device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    user.is_verified = functools.partial(is_verified, user)
    request.user = user
    request.session = {VERIFIED_AT_SESSION_KEY: time.time()}
    return request


def make_waiver(*, approved_by=None, owner=None, **fields):
    """A waiver through the service; approved by ``approved_by`` when given
    (a staff user holding waivers.approve_waiver with a TOTP device)."""
    values = {
        "item": "Backups not restored in a drill yet",
        "risk": "low",
        "deadline": timezone.localdate() + timedelta(days=30),
        "justification": "The drill needs a maintenance window.",
        "compensating_control": "Backups are verified by checksum daily.",
    }
    values.update(fields)
    waiver = waiver_create(actor=None, owner=owner or make_user(), **values)
    if approved_by is not None:
        waiver = waiver_approve(
            waiver_id=waiver.pk,
            actor=approved_by,
            request=verified_request(approved_by),
        )
    return waiver


def make_provider_event(operation, event_type, **data):
    """A provider webhook payload about ``operation``, as the sandbox sends it.

    ``data`` overrides fields of the event's object (amount, currency, id...);
    a value of None removes the field.
    """
    body = {
        "object": event_type.split(".")[0],
        "id": operation.provider_reference or f"po_{uuid.uuid4().hex[:24]}",
        "reference": str(operation.reference),
        "amount": operation.amount,
        "currency": operation.currency,
        "status": event_type.split(".")[1],
    }
    body.update(data)
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "type": event_type,
        "created": 1_700_000_000,
        "data": {key: value for key, value in body.items() if value is not None},
    }


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


def make_oncall_person(
    username=None, *, pagerduty="", slack_webhook="", slack_handle="", email=None
):
    """A user with an on-call profile; ``email=""`` leaves no e-mail at all."""
    from incidents.models import OnCallProfile

    user = make_user(username)
    if email is not None:
        user.email = email
        user.save(update_fields=["email"])
    OnCallProfile.objects.create(
        user=user,
        pagerduty_routing_key=pagerduty,
        slack_webhook_url=slack_webhook,
        slack_handle=slack_handle,
    )
    return user


def make_rotation(name=None, *, members=(), **fields):
    """A rotation (weekly, Monday 09:00 Europe/Berlin unless told) with
    ``members`` in order."""
    import datetime as dt

    from incidents.models import Rotation, RotationMember

    values = {
        "time_zone": "Europe/Berlin",
        "handoff_weekday": 0,
        "handoff_time": dt.time(9, 0),
        "shift_days": 7,
        "starts_on": dt.date(2026, 3, 2),
    }
    values.update(fields)
    rotation = Rotation.objects.create(name=name or f"rotation {next(_seq)}", **values)
    for position, user in enumerate(members, start=1):
        RotationMember.objects.create(rotation=rotation, user=user, position=position)
    return rotation
