"""Reconciliation tickets: opened, extended and closed by deep scans, worked on
by operators, and pushed to an external tracker through an outbound webhook.
"""

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from reconciliation.models import (
    CHECK_INVARIANTS,
    DeepScan,
    Finding,
    Invariant,
    ReconciliationTicket,
    TicketDelivery,
    TicketDeliveryAttempt,
)

log = structlog.get_logger(__name__)

Ticket = ReconciliationTicket

# What a finding carries over to its ticket on every observation.
_OBSERVED = [
    "wallet_id",
    "account_id",
    "transaction_id",
    "operation_kind",
    "operation_id",
    "expected",
    "actual",
    "difference",
    "suspect_transaction_ids",
]


@dataclass
class SettleCounts:
    opened: int = 0
    updated: int = 0
    closed: int = 0


def amount_band(difference: int) -> int:
    """The priority band of a mismatch of ``difference`` minor units.

    RECON_TICKET_PRIORITY_BANDS holds three increasing thresholds: below the
    first is low, below the second medium, below the third high, and from
    the third up critical. The thresholds are minor units of any currency,
    which is fair while the platform runs EUR, USD and GBP; a currency with
    a very different unit (JPY) would need thresholds per currency.
    """
    size = abs(difference)
    bands = settings.RECON_TICKET_PRIORITY_BANDS
    for priority, threshold in zip(
        (Ticket.Priority.LOW, Ticket.Priority.MEDIUM, Ticket.Priority.HIGH),
        bands,
        strict=True,
    ):
        if size < threshold:
            return priority
    return Ticket.Priority.CRITICAL


def closable_invariants(checks: list[str]) -> set[str]:
    """Invariants a scan of ``checks`` proves everywhere they can fail."""
    return {
        invariant
        for invariant in Invariant.values
        if all(
            check in checks
            for check, proves in CHECK_INVARIANTS.items()
            if invariant in proves
        )
    }


def tickets_settle(*, scan: DeepScan) -> SettleCounts:
    """Turn a completed scan's findings into tickets.

    1. Each finding, in its own transaction: lock the open ticket of its
       invariant, subject and currency (select_for_update) and append the
       finding as an observation; without one, open a ticket. Two settles
       racing to open the same ticket cannot both succeed: the partial
       unique constraint refuses the second, which then appends instead.
    2. Close every open ticket of an invariant this scan proved everywhere
       that the scan did not observe: its mismatch is gone.
    Every ticket change queues a delivery to the external tracker. One
    transaction per finding is quick for the tens of findings a week brings;
    after an incident with many thousands it takes minutes, which a weekly
    job can afford.
    """
    counts = SettleCounts()
    findings = Finding.objects.filter(scan=scan, ticket__isnull=True).order_by("id")
    for finding in findings.iterator(chunk_size=500):
        try:
            opened = _observe(finding)
        except IntegrityError:
            opened = _observe(finding)
        if opened:
            counts.opened += 1
        else:
            counts.updated += 1

    gone = Ticket.objects.filter(
        ~Q(status=Ticket.Status.CLOSED),
        invariant__in=closable_invariants(scan.checks),
    ).exclude(last_scan=scan)
    for ticket_id in gone.values_list("pk", flat=True).iterator():
        if _close_gone(ticket_id, scan=scan):
            counts.closed += 1
    return counts


@transaction.atomic
def _observe(finding: Finding) -> bool:
    """Append ``finding`` to its open ticket or open one; True when opened."""
    ticket = (
        Ticket.objects.select_for_update()
        .filter(
            invariant=finding.invariant,
            subject_key=finding.subject_key,
            currency=finding.currency,
        )
        .exclude(status=Ticket.Status.CLOSED)
        .first()
    )
    band = amount_band(finding.difference)
    if ticket is None:
        with transaction.atomic():
            ticket = Ticket.objects.create(
                invariant=finding.invariant,
                subject_type=finding.subject_type,
                subject_key=finding.subject_key,
                currency=finding.currency,
                priority=band,
                amount_band=band,
                opened_at=finding.observed_at,
                last_seen_at=finding.observed_at,
                first_scan_id=finding.scan_id,
                last_scan_id=finding.scan_id,
                observation_count=1,
                **{name: getattr(finding, name) for name in _OBSERVED},
            )
        _link(finding, ticket)
        _queue_delivery(ticket, TicketDelivery.Event.OPENED)
        return True

    changed = ticket.difference != finding.difference or band != ticket.amount_band
    for name in _OBSERVED:
        setattr(ticket, name, getattr(finding, name))
    if band != ticket.amount_band:
        # Priority follows the amount when it moves to another band; in
        # between, an operator's choice of priority stands.
        ticket.priority = band
        ticket.amount_band = band
    ticket.last_seen_at = finding.observed_at
    ticket.last_scan_id = finding.scan_id
    # The row lock makes a plain increment safe.
    ticket.observation_count += 1
    ticket._change_reason = f"observed again by deep scan {finding.scan_id}"
    ticket.save()
    _link(finding, ticket)
    if changed:
        _queue_delivery(ticket, TicketDelivery.Event.UPDATED)
    return False


def _link(finding: Finding, ticket: Ticket) -> None:
    Finding.objects.filter(pk=finding.pk).update(ticket=ticket)


@transaction.atomic
def _close_gone(ticket_id: int, *, scan: DeepScan) -> bool:
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    if ticket.status == Ticket.Status.CLOSED or ticket.last_scan_id == scan.pk:
        return False
    ticket.status = Ticket.Status.CLOSED
    ticket.closed_at = timezone.now()
    ticket.close_note = (
        f"Closed automatically: deep scan {scan.pk} found no mismatch "
        f"(last seen by scan {ticket.last_scan_id})."
    )
    ticket._change_reason = ticket.close_note[:100]
    ticket.save()
    _queue_delivery(ticket, TicketDelivery.Event.CLOSED)
    return True


@transaction.atomic
def ticket_update(
    *, ticket_id: int, actor, reason: str, **changes
) -> ReconciliationTicket:
    """An operator's change of owner, status, priority or notes, with a reason."""
    allowed = {"owner", "status", "priority", "note"}
    if set(changes) - allowed:
        raise ValueError(f"only {', '.join(sorted(allowed))} can be changed")
    if not reason:
        raise ValueError("a ticket change needs a reason")
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    was_open = ticket.is_open
    for name, value in changes.items():
        setattr(ticket, name, value)
    if was_open and not ticket.is_open:
        ticket.closed_at = timezone.now()
        ticket.close_note = reason[:500]
    elif ticket.is_open:
        ticket.closed_at = None
    ticket._change_reason = reason[:100]
    ticket.save()
    log.info(
        "recon_ticket.changed",
        ticket_id=ticket.pk,
        fields=sorted(changes),
        actor=getattr(actor, "pk", None),
    )
    event = (
        TicketDelivery.Event.CLOSED
        if was_open and not ticket.is_open
        else TicketDelivery.Event.UPDATED
    )
    _queue_delivery(ticket, event)
    return ticket


# --- the outbound webhook ------------------------------------------------------


def ticket_payload(ticket: Ticket, event: str) -> dict:
    """The generic JSON a tracker receives; stable keys, amounts in minor units."""
    return {
        "event": f"ticket.{event}",
        "ticket": {
            "id": ticket.pk,
            "status": ticket.status,
            "priority": ticket.get_priority_display().lower(),
            "invariant": ticket.invariant,
            "invariant_label": Invariant(ticket.invariant).label,
            "subject": {"type": ticket.subject_type, "key": ticket.subject_key},
            "currency": ticket.currency,
            "expected": ticket.expected,
            "actual": ticket.actual,
            "difference": ticket.difference,
            "wallet_id": ticket.wallet_id,
            "account_id": ticket.account_id,
            "transaction_id": ticket.transaction_id,
            "operation": (
                {"kind": ticket.operation_kind, "id": ticket.operation_id}
                if ticket.operation_kind
                else None
            ),
            "suspect_transaction_ids": ticket.suspect_transaction_ids,
            "owner": ticket.owner.get_username() if ticket.owner else None,
            "opened_at": ticket.opened_at.isoformat(),
            "last_seen_at": ticket.last_seen_at.isoformat(),
            "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
            "close_note": ticket.close_note,
            "observations": ticket.observation_count,
        },
    }


def _queue_delivery(ticket: Ticket, event: str) -> TicketDelivery | None:
    if not settings.RECON_TICKET_WEBHOOK_URL:
        return None
    delivery = TicketDelivery.objects.create(
        ticket=ticket, event=event, payload=ticket_payload(ticket, event)
    )
    _send_after_commit(delivery.pk)
    return delivery


def _send_after_commit(delivery_id: int) -> None:
    from reconciliation.tasks import ticket_delivery_send

    transaction.on_commit(lambda: ticket_delivery_send.delay(delivery_id))


@dataclass(frozen=True)
class DeliveryOutcome:
    delivered: bool
    retry_in: int | None  # seconds until the next attempt, None when finished


def backoff_seconds(attempts: int) -> int:
    """Wait before attempt ``attempts + 1``: doubling from the base, at most 1h."""
    base = settings.RECON_TICKET_WEBHOOK_BACKOFF_SECONDS
    return min(base * 2 ** max(attempts - 1, 0), 3600)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"sha256={digest}"


def ticket_delivery_attempt(*, delivery_id: int) -> DeliveryOutcome:
    """POST one delivery once and record the attempt.

    1. Claim the delivery with a conditional UPDATE (pending, not held by
       another sender, or held past its deadline), so two senders never
       post it at the same time.
    2. POST the payload, signed when a secret is set.
    3. Record the attempt; a 2xx answer delivers it, anything else schedules
       the next attempt with backoff, and running out of attempts marks it
       failed (kept, shown in the admin, retryable there): never dropped.
    """
    now = timezone.now()
    timeout = settings.RECON_TICKET_WEBHOOK_TIMEOUT_SECONDS
    claimed = (
        TicketDelivery.objects.filter(
            pk=delivery_id, status=TicketDelivery.Status.PENDING
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + timedelta(seconds=timeout * 2 + 30))
    )
    if not claimed:
        return DeliveryOutcome(delivered=False, retry_in=None)
    delivery = TicketDelivery.objects.get(pk=delivery_id)

    body = json.dumps(delivery.payload, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "opsadmin-reconciliation",
        "X-Opsadmin-Event": f"ticket.{delivery.event}",
        "X-Opsadmin-Delivery": str(delivery.pk),
        "X-Opsadmin-Timestamp": timestamp,
    }
    secret = settings.RECON_TICKET_WEBHOOK_SECRET
    if secret:
        headers["X-Opsadmin-Signature"] = signature(secret, timestamp, body)

    started = time.monotonic()
    status, error = None, ""
    try:
        response = requests.post(
            settings.RECON_TICKET_WEBHOOK_URL,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        )
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except requests.RequestException as exc:
        error = type(exc).__name__
    duration_ms = int((time.monotonic() - started) * 1000)
    return _delivery_record(delivery, status=status, error=error, ms=duration_ms)


@transaction.atomic
def _delivery_record(delivery, *, status, error, ms) -> DeliveryOutcome:
    delivery = TicketDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.attempts += 1
    TicketDeliveryAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        duration_ms=ms,
        http_status=status,
        error=error[:500],
    )
    delivery.claimed_until = None
    delivery.last_error = error[:500]
    retry_in = None
    if not error:
        delivery.status = TicketDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
    elif delivery.attempts >= settings.RECON_TICKET_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = TicketDelivery.Status.FAILED
        log.error(
            "recon_ticket.delivery_failed",
            delivery_id=delivery.pk,
            ticket_id=delivery.ticket_id,
            attempts=delivery.attempts,
            error=error,
        )
    else:
        retry_in = backoff_seconds(delivery.attempts)
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
    delivery.save()
    log.info(
        "recon_ticket.delivery_attempt",
        delivery_id=delivery.pk,
        attempt=delivery.attempts,
        http_status=status,
        outcome=delivery.status,
    )
    return DeliveryOutcome(delivered=not error, retry_in=retry_in)


def ticket_deliveries_retry(*, delivery_ids: list[int]) -> tuple[int, int]:
    """Send failed deliveries again from the admin; (queued, skipped)."""
    queued = skipped = 0
    for delivery_id in delivery_ids:
        with transaction.atomic():
            reset = TicketDelivery.objects.filter(
                pk=delivery_id, status=TicketDelivery.Status.FAILED
            ).update(
                status=TicketDelivery.Status.PENDING,
                next_attempt_at=timezone.now(),
                claimed_until=None,
            )
            if reset:
                queued += 1
                _send_after_commit(delivery_id)
            else:
                skipped += 1
    return queued, skipped


def ticket_deliveries_sweep(*, grace_seconds: int = 300) -> int:
    """Queue again every pending delivery well past its next attempt.

    A message lost between the database and the broker (a crash between
    commit and publish, a broker restart) would otherwise leave a delivery
    pending forever.
    """
    overdue = TicketDelivery.objects.filter(
        status=TicketDelivery.Status.PENDING,
        next_attempt_at__lt=timezone.now() - timedelta(seconds=grace_seconds),
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now()))
    ids = list(overdue.values_list("pk", flat=True)[:1000])
    for delivery_id in ids:
        _send_after_commit(delivery_id)
    return len(ids)
