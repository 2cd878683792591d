"""The sandbox provider's side of every payout and deposit.

Behaviour of one payout or deposit, chosen by the first of: the request's
``Sandbox-Behaviour`` header, the request's ``sandbox_behaviour`` field, a
plan stored for its reference (``sandbox_plan``), else ``succeed``:

    succeed       accepted; settles (paid / succeeded) after
                  SANDBOX_SETTLE_AFTER_SECONDS and sends the webhook
    fail          accepted; then fails (payout.failed / deposit.failed)
    reject        refused at once with 422 ``<object>_rejected``; nothing
                  is created
    timeout       created, but answered only after SANDBOX_TIMEOUT_SECONDS,
                  longer than the client waits; then settles as succeed
    never_settle  accepted; stays processing / pending until told otherwise

The control functions below (settle, fail, return, charge back, plan,
plant a discrepancy) act at once, for tests and demo data; the control API
in sandbox.views exposes the same over HTTP.
"""

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import requests
import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sandbox.models import (
    Behaviour,
    SandboxDeposit,
    SandboxPayout,
    SandboxPlan,
    SandboxSettlementLine,
    SandboxWebhook,
    SandboxWebhookAttempt,
)

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "Provider-Signature"
SETTLEMENT_HEADER = "provider_reference,type,amount,currency,status,settled_at"


class SandboxError(Exception):
    """A control request the sandbox will not carry out."""

    def __init__(self, message: str, *, status: int = 409, code: str = "invalid_state"):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def behaviour_for(*, header: str | None, field: str | None, reference: str) -> str:
    for chosen in (header, field):
        if chosen:
            if chosen not in Behaviour.values:
                raise SandboxError(
                    f"unknown sandbox behaviour {chosen!r}",
                    status=400,
                    code="invalid_request",
                )
            return chosen
    plan = SandboxPlan.objects.filter(reference=reference).first()
    return plan.behaviour if plan else Behaviour.SUCCEED


def sandbox_plan(*, reference: str, behaviour: str) -> SandboxPlan:
    """Decide now how the sandbox treats whatever later names ``reference``."""
    if behaviour not in Behaviour.values:
        raise SandboxError(f"unknown behaviour {behaviour!r}", status=400)
    plan, _ = SandboxPlan.objects.update_or_create(
        reference=reference, defaults={"behaviour": behaviour}
    )
    return plan


# --- payouts -------------------------------------------------------------


@transaction.atomic
def sandbox_payout_create(
    *, reference: str, amount: int, currency: str, destination_label: str, behaviour
) -> SandboxPayout:
    payout = SandboxPayout.objects.create(
        reference=reference,
        amount=amount,
        currency=currency,
        destination_label=destination_label,
        behaviour=behaviour,
    )
    if behaviour != Behaviour.NEVER_SETTLE:
        _settle_later("settle_payout", payout.pk)
    return payout


def sandbox_payout_settle(
    *,
    provider_reference: str,
    outcome: str | None = None,
    failure_code: str = "",
    send_webhook: bool = True,
) -> SandboxPayout:
    """Pay (or, with outcome "failed", fail) a processing payout now.

    Without an outcome the payout's behaviour decides. A payout already
    settled is left as it is, so the delayed task may run twice.
    """
    with transaction.atomic():
        payout = _lock(SandboxPayout, provider_reference)
        if payout.status != SandboxPayout.Status.PROCESSING:
            return payout
        if outcome is None:
            outcome = "failed" if payout.behaviour == Behaviour.FAIL else "paid"
        now = timezone.now()
        payout.settled_at = now
        if outcome == "paid":
            payout.status = SandboxPayout.Status.PAID
            _settlement_line(payout, SandboxSettlementLine.Type.PAYOUT, "paid", now)
        elif outcome == "failed":
            payout.status = SandboxPayout.Status.FAILED
            payout.failure_code = failure_code or "account_closed"
        else:
            raise SandboxError(f"unknown payout outcome {outcome!r}", status=400)
        payout.save()
        if send_webhook:
            _emit(f"payout.{payout.status}", payout_json(payout))
    return payout


def sandbox_payout_return(
    *, provider_reference: str, reversed: bool = False, send_webhook: bool = True
) -> SandboxPayout:
    """The bank sends a paid payout back (as ``payout.reversed`` if asked)."""
    with transaction.atomic():
        payout = _lock(SandboxPayout, provider_reference)
        if payout.status != SandboxPayout.Status.PAID:
            raise SandboxError(f"payout {provider_reference} is {payout.status}")
        payout.status = SandboxPayout.Status.RETURNED
        payout.returned_at = timezone.now()
        payout.save()
        _settlement_line(
            payout,
            SandboxSettlementLine.Type.PAYOUT_RETURN,
            "returned",
            payout.returned_at,
        )
        if send_webhook:
            kind = "payout.reversed" if reversed else "payout.returned"
            _emit(kind, payout_json(payout))
    return payout


def sandbox_settle_due_payout(payout_id: int) -> None:
    """The delayed settlement of an accepted payout (sandbox.tasks)."""
    payout = SandboxPayout.objects.filter(pk=payout_id).first()
    if payout is None or payout.behaviour == Behaviour.NEVER_SETTLE:
        return
    sandbox_payout_settle(provider_reference=payout.provider_reference)


# --- deposits ------------------------------------------------------------


@transaction.atomic
def sandbox_deposit_create(
    *, reference: str, amount: int, currency: str, behaviour
) -> SandboxDeposit:
    deposit = SandboxDeposit.objects.create(
        reference=reference, amount=amount, currency=currency, behaviour=behaviour
    )
    if behaviour != Behaviour.NEVER_SETTLE:
        _settle_later("settle_deposit", deposit.pk)
    return deposit


def sandbox_deposit_settle(
    *,
    provider_reference: str,
    outcome: str | None = None,
    failure_code: str = "",
    send_webhook: bool = True,
) -> SandboxDeposit:
    """The customer paid (or, with outcome "failed", did not) a pending deposit."""
    with transaction.atomic():
        deposit = _lock(SandboxDeposit, provider_reference)
        if deposit.status != SandboxDeposit.Status.PENDING:
            return deposit
        if outcome is None:
            outcome = "failed" if deposit.behaviour == Behaviour.FAIL else "succeeded"
        now = timezone.now()
        deposit.settled_at = now
        if outcome == "succeeded":
            deposit.status = SandboxDeposit.Status.SUCCEEDED
            _settlement_line(
                deposit, SandboxSettlementLine.Type.DEPOSIT, "succeeded", now
            )
        elif outcome == "failed":
            deposit.status = SandboxDeposit.Status.FAILED
            deposit.failure_code = failure_code or "card_declined"
        else:
            raise SandboxError(f"unknown deposit outcome {outcome!r}", status=400)
        deposit.save()
        if send_webhook:
            _emit(f"deposit.{deposit.status}", deposit_json(deposit))
    return deposit


def sandbox_deposit_charge_back(
    *, provider_reference: str, send_webhook: bool = True
) -> SandboxDeposit:
    """The card holder disputed a succeeded deposit and won."""
    with transaction.atomic():
        deposit = _lock(SandboxDeposit, provider_reference)
        if deposit.status != SandboxDeposit.Status.SUCCEEDED:
            raise SandboxError(f"deposit {provider_reference} is {deposit.status}")
        deposit.status = SandboxDeposit.Status.CHARGED_BACK
        deposit.charged_back_at = timezone.now()
        deposit.save()
        _settlement_line(
            deposit,
            SandboxSettlementLine.Type.CHARGEBACK,
            "charged_back",
            deposit.charged_back_at,
        )
        if send_webhook:
            _emit("deposit.charged_back", deposit_json(deposit))
    return deposit


def sandbox_settle_due_deposit(deposit_id: int) -> None:
    deposit = SandboxDeposit.objects.filter(pk=deposit_id).first()
    if deposit is None or deposit.behaviour == Behaviour.NEVER_SETTLE:
        return
    sandbox_deposit_settle(provider_reference=deposit.provider_reference)


# --- settlement statements ----------------------------------------------


def sandbox_settlement_csv(day: date) -> str:
    """The statement of ``day`` (UTC) in the provider's CSV format.

    Header ``provider_reference,type,amount,currency,status,settled_at``;
    type is payout, deposit, payout_return or chargeback; amount is a
    positive integer of minor units (the type gives the direction);
    settled_at is ISO 8601 in UTC (``2024-05-01T09:30:00Z``).
    """
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    lines = SandboxSettlementLine.objects.filter(
        settled_at__gte=start, settled_at__lt=start + timedelta(days=1), omitted=False
    )
    rows = [SETTLEMENT_HEADER]
    for line in lines:
        settled_at = line.settled_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(
            f"{line.provider_reference},{line.type},{line.amount},"
            f"{line.currency},{line.status},{settled_at}"
        )
    return "\r\n".join(rows) + "\r\n"


DISCREPANCY_KINDS = ("amount_differs", "unknown_line", "missing_line")


@transaction.atomic
def sandbox_plant_discrepancy(
    *,
    kind: str,
    provider_reference: str | None = None,
    amount: int | None = None,
    day: date | None = None,
    currency: str = "EUR",
    type: str | None = None,
) -> SandboxSettlementLine:
    """Make the settlement statement disagree with the merchant's books.

    - ``amount_differs``: the line of ``provider_reference`` (its latest,
      or the one of ``type``) reports ``amount`` (default: one minor unit
      more) instead of the real amount;
    - ``missing_line``: that line is left out of the statement;
    - ``unknown_line``: a line the merchant cannot know appears on ``day``
      (default today) at 12:00 UTC, for ``amount`` (default 1000) of
      ``type`` (default payout) in ``currency``, under
      ``provider_reference`` (default a fresh id).
    """
    if kind == "unknown_line":
        day = day or timezone.now().date()
        type = type or SandboxSettlementLine.Type.PAYOUT
        if type not in _SETTLED_STATUS:
            raise SandboxError(f"unknown line type {type!r}", status=400)
        return SandboxSettlementLine.objects.create(
            provider_reference=provider_reference
            or f"po_unknown_{uuid.uuid4().hex[:16]}",
            type=type,
            amount=amount or 1000,
            currency=currency,
            status=_SETTLED_STATUS[type],
            settled_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
            note="planted: unknown line",
        )
    if kind not in DISCREPANCY_KINDS:
        raise SandboxError(f"unknown discrepancy {kind!r}", status=400)
    lines = SandboxSettlementLine.objects.select_for_update().filter(
        provider_reference=provider_reference, omitted=False
    )
    if type:
        lines = lines.filter(type=type)
    line = lines.order_by("-settled_at", "-id").first()
    if line is None:
        raise SandboxError(
            f"no settlement line for {provider_reference}", status=404, code="not_found"
        )
    if kind == "missing_line":
        line.omitted = True
        line.note = "planted: missing line"
    else:
        real = line.amount
        line.amount = amount if amount is not None else real + 1
        line.note = f"planted: amount differs (really {real})"
    line.save()
    return line


_SETTLED_STATUS: dict[str, str] = {
    SandboxSettlementLine.Type.PAYOUT: "paid",
    SandboxSettlementLine.Type.DEPOSIT: "succeeded",
    SandboxSettlementLine.Type.PAYOUT_RETURN: "returned",
    SandboxSettlementLine.Type.CHARGEBACK: "charged_back",
}


# --- webhooks ------------------------------------------------------------


def sign(*, secret: str, body: bytes, timestamp: int) -> str:
    """The ``Provider-Signature`` value: HMAC-SHA256 of ``"<t>.<body>"``.

    Written apart from finance.webhooks on purpose: a provider does not
    share our code, and a slip in either side then shows up in the tests.
    """
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    )
    return f"t={timestamp},v1={digest.hexdigest()}"


def sandbox_webhook_deliver(*, webhook_id: int) -> bool:
    """POST one webhook to SANDBOX_WEBHOOK_URL once; log it; True if taken.

    Signed at the moment of sending, so a retry hours later is not stale.
    No transaction is open while the merchant answers.
    """
    webhook = SandboxWebhook.objects.get(pk=webhook_id)
    if webhook.status == SandboxWebhook.Status.DELIVERED:
        return True
    body = json.dumps(webhook.payload, separators=(",", ":")).encode()
    secret = settings.PROVIDERS["sandbox"]["webhook_secret"]
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret=secret, body=body, timestamp=int(time.time())),
    }

    started = time.monotonic()
    status_code, error = None, ""
    try:
        response = requests.post(
            settings.SANDBOX_WEBHOOK_URL, data=body, headers=headers, timeout=(3, 10)
        )
        status_code = response.status_code
        if status_code >= 300:
            error = response.text[:300]
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}"
    duration_ms = int((time.monotonic() - started) * 1000)

    delivered = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        webhook = SandboxWebhook.objects.select_for_update().get(pk=webhook_id)
        SandboxWebhookAttempt.objects.create(
            webhook=webhook,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
        webhook.attempts += 1
        webhook.last_status_code = status_code
        webhook.last_error = error
        if delivered:
            webhook.status = SandboxWebhook.Status.DELIVERED
            webhook.delivered_at = timezone.now()
        webhook.save()
    log.info(
        "sandbox.webhook_sent",
        event_id=webhook.event_id,
        type=webhook.type,
        status=status_code,
        delivered=delivered,
        attempt=webhook.attempts,
    )
    return delivered


def sandbox_webhook_give_up(*, webhook_id: int) -> None:
    with transaction.atomic():
        webhook = SandboxWebhook.objects.select_for_update().get(pk=webhook_id)
        if webhook.status == SandboxWebhook.Status.PENDING:
            webhook.status = SandboxWebhook.Status.GIVEN_UP
            webhook.save(update_fields=["status"])


# --- helpers -------------------------------------------------------------


def _lock(model, provider_reference: str):
    try:
        return model.objects.select_for_update().get(
            provider_reference=provider_reference
        )
    except model.DoesNotExist:
        raise SandboxError(
            f"no such object {provider_reference}", status=404, code="not_found"
        ) from None


def _settle_later(task_name: str, object_id: int) -> None:
    if not settings.SANDBOX_AUTO_SETTLE:
        return

    def queue():
        # Imported here because the tasks import these services.
        from sandbox import tasks

        try:
            getattr(tasks, task_name).apply_async(
                (object_id,), countdown=settings.SANDBOX_SETTLE_AFTER_SECONDS
            )
        except Exception:
            log.exception("sandbox.settle_queue_failed", task=task_name, id=object_id)

    transaction.on_commit(queue)


def _emit(event_type: str, data: dict) -> SandboxWebhook:
    """Record an event and send it once the current transaction commits."""
    webhook = SandboxWebhook(type=event_type)
    webhook.payload = {
        "id": webhook.event_id,
        "type": event_type,
        "created": int(time.time()),
        "data": data,
    }
    webhook.save()

    def queue():
        from sandbox.tasks import deliver_webhook

        try:
            deliver_webhook.delay(webhook.pk)
        except Exception:
            log.exception("sandbox.webhook_queue_failed", event_id=webhook.event_id)

    transaction.on_commit(queue)
    return webhook


def _settlement_line(obj, type: str, status: str, when) -> None:
    SandboxSettlementLine.objects.create(
        provider_reference=obj.provider_reference,
        type=type,
        amount=obj.amount,
        currency=obj.currency,
        status=status,
        settled_at=when,
    )


def _iso(moment) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payout_json(payout: SandboxPayout) -> dict:
    return {
        "object": "payout",
        "id": payout.provider_reference,
        "reference": payout.reference,
        "amount": payout.amount,
        "currency": payout.currency,
        "status": payout.status,
        "failure_code": payout.failure_code or None,
        "destination": {"label": payout.destination_label},
        "created": _iso(payout.created_at),
        "settled_at": _iso(payout.settled_at),
    }


def deposit_json(deposit: SandboxDeposit) -> dict:
    return {
        "object": "deposit",
        "id": deposit.provider_reference,
        "reference": deposit.reference,
        "amount": deposit.amount,
        "currency": deposit.currency,
        "status": deposit.status,
        "failure_code": deposit.failure_code or None,
        "created": _iso(deposit.created_at),
        "settled_at": _iso(deposit.settled_at),
    }
