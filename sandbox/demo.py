"""Demo data for the sandbox provider (the ``seed_demo`` hook).

The seeded payouts and deposits that reached the provider (those with a
provider reference) get their counterpart on the provider's side, in the
provider's matching status, so that polling a processing payout finds it
instead of a 404 and the sandbox pages list them. Processing payouts and
pending deposits are told never to settle: the demo's stuck cases stay
stuck until someone acts on them (the sandbox's settle control, or an
override). Rows are created in batches, never one by one; running it twice
adds nothing. Refused in production.
"""

from django.conf import settings
from django.db import transaction

from finance.models import Deposit, Payout
from sandbox.models import Behaviour, SandboxDeposit, SandboxPayout

BATCH = 5_000
# Our state -> the provider's status (the names agree except for "created",
# which never reaches the provider).
PAYOUT_STATUS = {
    "processing": SandboxPayout.Status.PROCESSING,
    "paid": SandboxPayout.Status.PAID,
    "failed": SandboxPayout.Status.FAILED,
    "returned": SandboxPayout.Status.RETURNED,
}
DEPOSIT_STATUS = {
    "pending": SandboxDeposit.Status.PENDING,
    "succeeded": SandboxDeposit.Status.SUCCEEDED,
    "failed": SandboxDeposit.Status.FAILED,
    "charged_back": SandboxDeposit.Status.CHARGED_BACK,
}
UNSETTLED = {SandboxPayout.Status.PROCESSING, SandboxDeposit.Status.PENDING}


def _behaviour(status: str) -> str:
    if status in UNSETTLED:
        return Behaviour.NEVER_SETTLE
    if status == "failed":
        return Behaviour.FAIL
    return Behaviour.SUCCEED


def _payouts():
    rows = Payout.objects.filter(
        provider="sandbox", provider_reference__isnull=False, state__in=PAYOUT_STATUS
    ).values(
        "reference",
        "provider_reference",
        "amount",
        "currency",
        "withdrawal__destination_label",
        "state",
        "created_at",
        "settled_at",
        "state_changed_at",
    )
    for row in rows.order_by("pk").iterator(chunk_size=BATCH):
        status = PAYOUT_STATUS[row["state"]]
        yield SandboxPayout(
            provider_reference=str(row["provider_reference"]),  # filtered: not null
            reference=str(row["reference"]),
            amount=row["amount"],
            currency=row["currency"],
            destination_label=row["withdrawal__destination_label"],
            status=status,
            behaviour=_behaviour(status),
            created_at=row["created_at"],
            settled_at=row["settled_at"],
            returned_at=row["state_changed_at"] if row["state"] == "returned" else None,
        )


def _deposits():
    rows = Deposit.objects.filter(
        provider="sandbox", provider_reference__isnull=False, state__in=DEPOSIT_STATUS
    ).values(
        "reference",
        "provider_reference",
        "amount",
        "currency",
        "state",
        "created_at",
        "state_changed_at",
    )
    for row in rows.order_by("pk").iterator(chunk_size=BATCH):
        status = DEPOSIT_STATUS[row["state"]]
        settled = row["state"] in ("succeeded", "charged_back")
        yield SandboxDeposit(
            provider_reference=str(row["provider_reference"]),  # filtered: not null
            reference=str(row["reference"]),
            amount=row["amount"],
            currency=row["currency"],
            status=status,
            behaviour=_behaviour(status),
            created_at=row["created_at"],
            settled_at=row["state_changed_at"] if settled else None,
            charged_back_at=(
                row["state_changed_at"] if row["state"] == "charged_back" else None
            ),
        )


def _create(model, rows) -> int:
    """Insert ``rows`` in batches, skipping those already there; count the new."""
    before = model.objects.count()
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            model.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    model.objects.bulk_create(batch, ignore_conflicts=True)
    return model.objects.count() - before


@transaction.atomic
def seed_demo(context=None, **_ignored):
    if settings.PRODUCTION:
        raise RuntimeError("sandbox demo data is refused in production")
    payouts = _create(SandboxPayout, _payouts())
    deposits = _create(SandboxDeposit, _deposits())
    stdout = getattr(context, "stdout", None)
    if stdout is not None:
        stdout.write(
            f"sandbox: the provider's side of {payouts:,} payouts and "
            f"{deposits:,} deposits\n"
        )
    return {"payouts": payouts, "deposits": deposits}
