"""The provider's webhooks: verify, read, apply once, record every delivery.

``webhook_receive`` takes one HTTP delivery and returns the status the
provider should see. Checks run cheapest first, and each refusal changes
nothing but the delivery log:

    413 too_large      body over WEBHOOK_MAX_BODY_BYTES
    401 bad_signature  Provider-Signature missing, unreadable or wrong
    400 stale          signed further than WEBHOOK_TOLERANCE_SECONDS from now
    400 malformed      not JSON, or not an event (ids, amount, currency)
    422 unknown_type   an event type we do not handle
    404 not_found      names no operation of ours
    422 rejected       amount, currency or references disagree with it
    409 rejected       the move is illegal from the operation's state
    200 duplicate      event id seen before, or the operation is already there
    200 applied
    500 failed         our own failure; the provider retries

Applying runs in one transaction whose first write inserts the event id
(WebhookEvent, unique per provider). The same event delivered concurrently
therefore waits on that unique index and, once the first commits, is a
duplicate: applied exactly once. Every delivery is then recorded as a
WebhookDelivery in a transaction of its own, so a rolled-back apply is
still on record.
"""

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from finance.errors import IllegalTransition, Mismatch
from finance.models import Deposit, Payout, WebhookDelivery, WebhookEvent
from finance.money import MoneyError, validate_amount, validate_currency
from finance.services import deposits, payouts
from finance.services.transitions import lock
from finance.states import DepositState, PayoutState

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "Provider-Signature"
Outcome = WebhookDelivery.Outcome


class BadSignature(Exception):
    pass


class StaleSignature(Exception):
    pass


def signature_verify(
    *,
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    tolerance: int,
    now: float | None = None,
) -> int:
    """Check a ``t=<unix>,v1=<hex>`` HMAC-SHA256 of ``"<t>.<body>"``; return t.

    Any one of ``secrets`` may have signed it, and the header may carry
    several v1 values: while a secret is rotated, the old and the new one
    both verify. Raises BadSignature, or StaleSignature when the signature
    is right but t lies more than ``tolerance`` seconds from now (an old
    delivery replayed).
    """
    if not header:
        raise BadSignature(f"missing {SIGNATURE_HEADER} header")
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value.encode())
    if timestamp is None or not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise BadSignature(f"unreadable {SIGNATURE_HEADER} header")

    signed = timestamp.encode() + b"." + body
    expected = [
        hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        for secret in secrets
        if secret
    ]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise BadSignature("signature does not match")

    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance:
        raise StaleSignature(f"signed {int(age)} seconds from now")
    return int(timestamp)


def webhook_secrets(provider: str, *, now=None) -> list[str]:
    """The secrets a delivery from ``provider`` may be signed with, current first.

    While the signing secret is rotated, the previous one
    (PROVIDER_<CODE>_WEBHOOK_SECRET_PREVIOUS) verifies too, strictly before
    its _UNTIL time; the window closes by itself. The waiver gate checks the
    window's length (waivers/rotation.py; runbook, "Secret rotation").
    """
    now = now or timezone.now()
    current = settings.PROVIDERS[provider]["webhook_secret"]
    previous = settings.PROVIDER_WEBHOOK_SECRETS_PREVIOUS.get(provider)
    if previous and now < previous["until"] and previous["secret"] != current:
        return [current, previous["secret"]]
    return [current]


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    provider_reference: str | None
    reference: uuid.UUID | None
    amount: int
    currency: str
    failure_code: str


@dataclass(frozen=True)
class EventType:
    model: type[Deposit] | type[Payout]
    # The state the event puts the operation in; an operation already there
    # makes the event a duplicate.
    target: str


EVENT_TYPES = {
    "deposit.succeeded": EventType(Deposit, DepositState.SUCCEEDED),
    "deposit.failed": EventType(Deposit, DepositState.FAILED),
    "deposit.charged_back": EventType(Deposit, DepositState.CHARGED_BACK),
    "payout.processing": EventType(Payout, PayoutState.PROCESSING),
    "payout.paid": EventType(Payout, PayoutState.PAID),
    "payout.failed": EventType(Payout, PayoutState.FAILED),
    "payout.returned": EventType(Payout, PayoutState.RETURNED),
    # Some banks call a return a reversal; to us it is the same move.
    "payout.reversed": EventType(Payout, PayoutState.RETURNED),
}


class Refusal(Exception):
    def __init__(self, outcome: str, status: int, message: str):
        super().__init__(message)
        self.outcome, self.status, self.message = outcome, status, message


@dataclass(frozen=True)
class WebhookResult:
    status: int
    outcome: str
    error: str
    delivery: WebhookDelivery


def webhook_receive(
    *,
    provider: str,
    body: bytes,
    signature: str | None,
    started: float | None = None,
) -> WebhookResult:
    """Handle one delivery from ``provider`` and record it; never raises.

    ``started`` is the ``time.monotonic()`` at which the request arrived,
    so that processing time includes reading the body.
    """
    started = time.monotonic() if started is None else started
    delivery = WebhookDelivery(provider=provider)
    status: int
    outcome: str
    error: str
    try:
        _process(provider, body, signature, delivery)
        status, outcome, error = 200, Outcome.APPLIED, ""
    except Refusal as refusal:
        status, outcome, error = refusal.status, refusal.outcome, refusal.message
    except Exception as exc:
        log.exception("webhook.failed", provider=provider, event_id=delivery.event_id)
        status, outcome, error = 500, Outcome.FAILED, f"{type(exc).__name__}: {exc}"

    delivery.http_status = status
    delivery.outcome = outcome
    delivery.error = error[:500]
    delivery.processing_ms = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        delivery.save()

    level = "info" if status == 200 else "error" if status == 500 else "warning"
    getattr(log, level)(
        "webhook.received",
        provider=provider,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        outcome=str(outcome),
        status=status,
        error=error or None,
        processing_ms=delivery.processing_ms,
        operation_kind=delivery.operation_kind or None,
        operation_id=delivery.operation_id,
    )
    return WebhookResult(status=status, outcome=outcome, error=error, delivery=delivery)


def _process(provider: str, body: bytes, signature, delivery: WebhookDelivery):
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    if len(body) > limit:
        raise Refusal(Outcome.TOO_LARGE, 413, f"body exceeds {limit} bytes")
    payload = _parse_json(body)
    _note_payload(delivery, payload)

    try:
        signature_verify(
            header=signature,
            body=body,
            secrets=webhook_secrets(provider),
            tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
        )
    except BadSignature as exc:
        raise Refusal(Outcome.BAD_SIGNATURE, 401, str(exc)) from None
    except StaleSignature as exc:
        raise Refusal(Outcome.STALE, 400, str(exc)) from None

    if payload is None:
        raise Refusal(Outcome.MALFORMED, 400, "body is not a JSON object")
    event_id, type_name = _envelope(payload)
    event_type = EVENT_TYPES.get(type_name)
    if event_type is None:
        raise Refusal(Outcome.UNKNOWN_TYPE, 422, f"unknown event type {type_name}")
    event = _event(event_id, type_name, payload)

    operation = _find(event_type.model, provider, event)
    delivery.operation_kind = event_type.model.__name__.lower()
    delivery.operation_id = operation.pk
    _check_matches(operation, event)
    _apply(provider, event, event_type, operation.pk)


def _parse_json(body: bytes) -> dict | None:
    def refuse_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        payload = json.loads(body, parse_constant=refuse_constant)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _note_payload(delivery: WebhookDelivery, payload: dict | None) -> None:
    if payload is None:
        return
    delivery.event_id = str(payload.get("id", ""))[:100]
    delivery.event_type = str(payload.get("type", ""))[:64]
    # PostgreSQL's jsonb cannot hold a NUL character; such a body is
    # malformed anyway and is kept without its payload.
    if "\\u0000" not in json.dumps(payload):
        delivery.payload = payload


def _malformed(message: str) -> Refusal:
    return Refusal(Outcome.MALFORMED, 400, message)


def _envelope(payload: dict) -> tuple[str, str]:
    event_id, event_type = payload.get("id"), payload.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 100:
        raise _malformed("id must be a string of 1 to 100 characters")
    if not isinstance(event_type, str) or not 0 < len(event_type) <= 64:
        raise _malformed("type must be a string of 1 to 64 characters")
    return event_id, event_type


def _event(event_id: str, event_type: str, payload: dict) -> Event:
    """Read the event's object out of a parsed body, or refuse it."""
    malformed = _malformed
    data = payload.get("data")
    if not isinstance(data, dict):
        raise malformed("data must be an object")

    provider_reference = data.get("id")
    if provider_reference is not None and (
        not isinstance(provider_reference, str)
        or not 0 < len(provider_reference) <= 100
    ):
        raise malformed("data.id must be a string of 1 to 100 characters")
    reference = data.get("reference")
    if reference is not None:
        try:
            reference = uuid.UUID(str(reference))
        except ValueError:
            raise malformed("data.reference must be a UUID") from None
    if provider_reference is None and reference is None:
        raise malformed("data must name the operation by id or reference")
    try:
        amount = validate_amount(data.get("amount"))
        currency = validate_currency(data.get("currency"))
    except MoneyError as exc:
        raise malformed(f"data: {exc}") from None
    return Event(
        id=event_id,
        type=event_type,
        provider_reference=provider_reference,
        reference=reference,
        amount=amount,
        currency=currency,
        failure_code=str(data.get("failure_code") or "")[:100],
    )


def _find(model, provider: str, event: Event):
    operations = model.objects.filter(provider=provider)
    operation = None
    if event.provider_reference:
        operation = operations.filter(
            provider_reference=event.provider_reference
        ).first()
    if operation is None and event.reference:
        operation = operations.filter(reference=event.reference).first()
    if operation is None:
        raise Refusal(
            Outcome.NOT_FOUND,
            404,
            f"no {model.__name__.lower()} of {provider} with id "
            f"{event.provider_reference} or reference {event.reference}",
        )
    return operation


def _check_matches(operation, event: Event) -> None:
    # The amount must be the operation's whole amount: a partial chargeback
    # or refund is refused as a mismatch and left to an operator, which is
    # acceptable while the provider only reverses whole amounts; supporting
    # it needs an amount on the chargeback move and its postings.
    try:
        if (event.amount, event.currency) != (operation.amount, operation.currency):
            raise Mismatch(
                f"event says {event.amount} {event.currency}, {operation} is "
                f"{operation.amount} {operation.currency}"
            )
        if event.reference and event.reference != operation.reference:
            raise Mismatch(f"event reference {event.reference} is not {operation}'s")
        if (
            event.provider_reference
            and operation.provider_reference
            and event.provider_reference != operation.provider_reference
        ):
            raise Mismatch(
                f"event id {event.provider_reference}, {operation} has "
                f"{operation.provider_reference}"
            )
    except Mismatch as exc:
        raise Refusal(Outcome.REJECTED, 422, str(exc)) from None


def _apply(provider: str, event: Event, event_type: EventType, operation_id: int):
    """Insert the event id, then make the move, in one transaction."""
    try:
        with transaction.atomic():
            try:
                # A concurrent delivery of the same event blocks here until
                # the first one commits or rolls back.
                with transaction.atomic():
                    WebhookEvent.objects.create(
                        provider=provider, event_id=event.id, event_type=event.type
                    )
            except IntegrityError:
                raise Refusal(Outcome.DUPLICATE, 200, "event already applied") from None

            operation = lock(event_type.model, operation_id)
            if operation.state == event_type.target or (
                event.type == "payout.processing"
                and operation.state != PayoutState.CREATED
            ):
                # Kept, with the event id recorded: the provider sent a new
                # event for news we already have.
                raise _AlreadyThere(f"{operation} is already {operation.state}")
            MOVES[event.type](operation_id, event)
    except _AlreadyThere as already:
        raise Refusal(Outcome.DUPLICATE, 200, str(already)) from None
    except IllegalTransition as exc:
        raise Refusal(Outcome.REJECTED, 409, str(exc)) from None


class _AlreadyThere(Exception):
    pass


def _reason(event: Event) -> str:
    reason = f"provider event {event.type} {event.id}"
    return f"{reason}: {event.failure_code}" if event.failure_code else reason


MOVES = {
    "deposit.succeeded": lambda pk, event: deposits.deposit_succeed(
        deposit_id=pk,
        via="webhook",
        reason=_reason(event),
        provider_reference=event.provider_reference,
    ),
    "deposit.failed": lambda pk, event: deposits.deposit_fail(
        deposit_id=pk,
        via="webhook",
        reason=_reason(event),
        provider_reference=event.provider_reference,
    ),
    "deposit.charged_back": lambda pk, event: deposits.deposit_charge_back(
        deposit_id=pk, via="webhook", reason=_reason(event)
    ),
    "payout.processing": lambda pk, event: payouts.payout_accept(
        payout_id=pk, provider_reference=event.provider_reference or "", via="webhook"
    ),
    "payout.paid": lambda pk, event: payouts.payout_pay(
        payout_id=pk,
        via="webhook",
        reason=_reason(event),
        provider_reference=event.provider_reference,
    ),
    "payout.failed": lambda pk, event: payouts.payout_fail(
        payout_id=pk, via="webhook", reason=_reason(event)
    ),
    "payout.returned": lambda pk, event: payouts.payout_return(
        payout_id=pk, via="webhook", reason=_reason(event)
    ),
    "payout.reversed": lambda pk, event: payouts.payout_return(
        payout_id=pk, via="webhook", reason=_reason(event)
    ),
}
