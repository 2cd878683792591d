"""Raising, resolving and delivering alerts and notifications.

Callers use three functions:

- ``alert_trigger(key=..., summary=..., ...)`` opens the alert ``key`` and
  notifies its route, or updates it quietly when it is already open;
- ``alert_resolve(key=...)`` closes it and tells every channel that heard of
  it (PagerDuty resolves the incident with the same dedup key);
- ``notify(channel=..., target=..., message=...)`` sends one message to one
  recipient, outside any alert (an escalation step paging a named person).

Every message becomes a ``Delivery`` sent by a Celery task after commit,
retried with exponential backoff, handed to e-mail when its channel gives up,
and left visible as failed when even e-mail fails.
"""

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import NamedTuple

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from alerts.channels import SEVERITIES, DeliveryError, Message, channel_module
from alerts.models import Alert, Delivery, DeliveryAttempt

log = structlog.get_logger(__name__)

# How long a claimed delivery is left alone before the sweeper assumes the
# worker that claimed it died mid-send; longer than any HTTP timeout.
CLAIM_SECONDS = 120


class Target(NamedTuple):
    """One recipient on one channel; ``address`` empty = the settings default."""

    channel: str
    address: str = ""


def route_targets(route: str | Sequence[Target]) -> list[Target]:
    """The configured targets of a route, or e-mail when none is configured."""
    if isinstance(route, str):
        try:
            channels = settings.ALERT_ROUTES[route]
        except KeyError:
            raise ValueError(f"unknown alert route {route!r}") from None
        targets = [Target(channel) for channel in channels]
    else:
        targets = [Target(*target) for target in route]
    usable = [t for t in targets if channel_module(t.channel).configured(t.address)]
    return usable or [Target(Delivery.Channel.EMAIL)]


def _message(alert: Alert, action: str) -> Message:
    return Message(
        summary=alert.summary,
        severity=alert.severity,
        source=alert.source,
        key=alert.key,
        action=action,
        component=alert.component,
        group=alert.group,
        alert_class=alert.alert_class,
        details=alert.details,
        timestamp=timezone.now().isoformat(),
    )


def _deliveries_create(
    *, alert: Alert | None, targets: Iterable[Target], message: Message
) -> list[Delivery]:
    deliveries = [
        Delivery.objects.create(
            alert=alert,
            channel=target.channel,
            target=target.address,
            action=message.action,
            message=message.as_dict(),
        )
        for target in targets
    ]
    for delivery in deliveries:
        delivery_queue(delivery_id=delivery.pk)
    return deliveries


def alert_trigger(
    *,
    key: str,
    summary: str,
    severity: str = "error",
    details: dict | None = None,
    source: str = "opsadmin",
    component: str = "",
    group: str = "",
    alert_class: str = "",
    route: str | Sequence[Target] = "page",
    muted_reason: str = "",
) -> Alert:
    """Open alert ``key`` and notify ``route``; a repeat only updates it.

    ``route`` is a route name from settings.ALERT_ROUTES or a list of
    ``Target``. With ``muted_reason`` (a maintenance window) the alert is
    recorded but nobody is notified; a later unmuted trigger of the same open
    alert notifies then.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}")
    targets = route_targets(route)
    fields = {
        "summary": summary[:1024],
        "severity": severity,
        "details": details or {},
        "source": source,
        "component": component,
        "group": group,
        "alert_class": alert_class,
        "route": route if isinstance(route, str) else "custom",
    }
    try:
        return _trigger(key=key, fields=fields, targets=targets, muted=muted_reason)
    except IntegrityError:
        # Another process opened the same key between our read and insert;
        # now it exists, so this becomes a repeat.
        return _trigger(key=key, fields=fields, targets=targets, muted=muted_reason)


@transaction.atomic
def _trigger(*, key, fields, targets, muted) -> Alert:
    now = timezone.now()
    alert = (
        Alert.objects.select_for_update()
        .filter(key=key, status=Alert.Status.TRIGGERED)
        .first()
    )
    if alert is None:
        alert = Alert.objects.create(
            key=key,
            muted_reason=muted,
            triggered_at=now,
            last_triggered_at=now,
            **fields,
        )
        log.warning("alert.triggered", key=key, muted=bool(muted))
        if not muted:
            _deliveries_create(
                alert=alert, targets=targets, message=_message(alert, "trigger")
            )
        return alert

    was_muted = alert.muted
    for name, value in fields.items():
        setattr(alert, name, value)
    alert.last_triggered_at = now
    alert.trigger_count = F("trigger_count") + 1
    if was_muted:
        # An alert people were already told about never becomes "muted".
        alert.muted_reason = muted
    alert.save()
    alert.refresh_from_db()
    if was_muted and not muted:
        # The window closed while the problem stayed: tell people now.
        log.warning("alert.unmuted", key=key)
        _deliveries_create(
            alert=alert, targets=targets, message=_message(alert, "trigger")
        )
    return alert


@transaction.atomic
def alert_resolve(*, key: str) -> Alert | None:
    """Resolve the open alert ``key``, if any, on every channel that heard of it."""
    alert = (
        Alert.objects.select_for_update()
        .filter(key=key, status=Alert.Status.TRIGGERED)
        .first()
    )
    if alert is None:
        return None
    alert.status = Alert.Status.RESOLVED
    alert.resolved_at = timezone.now()
    alert.save(update_fields=["status", "resolved_at"])
    log.info("alert.resolved", key=key)

    told = (
        alert.deliveries.filter(action=Delivery.Action.TRIGGER)
        .values_list("channel", "target")
        .distinct()
    )
    _deliveries_create(
        alert=alert,
        targets=sorted(Target(*pair) for pair in told),
        message=_message(alert, "resolve"),
    )
    return alert


def notify(*, channel: str, target: str = "", message: Message) -> Delivery:
    """Send ``message`` to one recipient, with the same retries and fallback."""
    if not channel_module(channel).configured(target):
        raise ValueError(f"channel {channel} has no target and no default")
    with transaction.atomic():
        (delivery,) = _deliveries_create(
            alert=None, targets=[Target(channel, target)], message=message
        )
    return delivery


def delivery_queue(*, delivery_id: int, countdown: int = 0) -> None:
    """Send the delivery from a worker once the current transaction commits.

    A broker that is down must not fail the caller (a job reporting its own
    failure): the delivery stays pending and the sweeper sends it.
    """
    from alerts.tasks import deliver

    transaction.on_commit(
        lambda: deliver.apply_async((delivery_id,), countdown=countdown),
        robust=True,
    )


def _backoff(attempts: int, retry_after: int | None) -> int:
    seconds = settings.ALERT_RETRY_BASE_SECONDS * 2 ** (attempts - 1)
    seconds = min(seconds, settings.ALERT_RETRY_MAX_SECONDS)
    return max(seconds, retry_after or 0)


def delivery_attempt(*, delivery_id: int) -> Delivery | None:
    """Make one attempt at a delivery; safe to call twice or concurrently.

    1. Claim: a conditional UPDATE takes the delivery only while it is
       pending and due, counts the attempt and pushes ``next_attempt_at``
       past the claim time. A second caller (the sweeper, a redelivered
       task) matches no row and returns None. A resolve is not claimed
       while the trigger to the same recipient is still pending: PagerDuty
       must not see a resolve before its trigger, or the incident it opens
       afterwards stays open. The sweeper sends the resolve once the trigger
       has settled.
    2. Send, outside any transaction, and record the attempt.
    3. Settle: delivered; or due again after a backoff; or, refused or out
       of attempts, failed and handed to the fallback.
    """
    now = timezone.now()
    trigger_pending = Delivery.objects.filter(
        alert=OuterRef("alert"),
        channel=OuterRef("channel"),
        target=OuterRef("target"),
        action=Delivery.Action.TRIGGER,
        status=Delivery.Status.PENDING,
    )
    claimed = (
        Delivery.objects.filter(
            pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
        )
        .exclude(Q(action=Delivery.Action.RESOLVE) & Exists(trigger_pending))
        .update(
            attempts=F("attempts") + 1,
            next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS),
        )
    )
    if not claimed:
        return None
    delivery = Delivery.objects.get(pk=delivery_id)
    attempt = DeliveryAttempt.objects.create(
        delivery=delivery, number=delivery.attempts, started_at=now
    )

    retry_after = None
    started = time.monotonic()
    module = channel_module(delivery.channel)
    try:
        attempt.http_status = module.send(
            Message.from_dict(delivery.message), delivery.target
        )
        attempt.outcome = DeliveryAttempt.Outcome.DELIVERED
    except DeliveryError as exc:
        attempt.http_status = exc.http_status
        attempt.error = exc.error[:500]
        attempt.outcome = (
            DeliveryAttempt.Outcome.RETRYABLE
            if exc.retryable
            else DeliveryAttempt.Outcome.REFUSED
        )
        retry_after = exc.retry_after
    except Exception as exc:
        # A fault of ours (a bad message, a bug in a channel): counted like a
        # failed attempt, so it still ends at the fallback, never in a loop.
        log.exception("alert.delivery_error", delivery_id=delivery.pk)
        attempt.error = f"{type(exc).__name__}: {exc}"[:500]
        attempt.outcome = DeliveryAttempt.Outcome.RETRYABLE
    attempt.duration_ms = round((time.monotonic() - started) * 1000)
    attempt.save(update_fields=["http_status", "error", "outcome", "duration_ms"])

    log_context = {
        "delivery_id": delivery.pk,
        "channel": delivery.channel,
        "action": delivery.action,
        "attempt": attempt.number,
        "http_status": attempt.http_status,
    }
    if attempt.outcome == DeliveryAttempt.Outcome.DELIVERED:
        delivery.status = Delivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.save(update_fields=["status", "delivered_at"])
        log.info("alert.delivered", **log_context)
        return delivery

    delivery.last_error = attempt.error
    retry = attempt.outcome == DeliveryAttempt.Outcome.RETRYABLE
    if retry and delivery.attempts < settings.ALERT_MAX_ATTEMPTS:
        wait = _backoff(delivery.attempts, retry_after)
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
        delivery.save(update_fields=["last_error", "next_attempt_at"])
        log.warning("alert.delivery_retry", wait_seconds=wait, **log_context)
        delivery_queue(delivery_id=delivery.pk, countdown=wait)
        return delivery

    delivery.status = Delivery.Status.FAILED
    delivery.save(update_fields=["status", "last_error"])
    log.error("alert.delivery_failed", error=delivery.last_error, **log_context)
    _fall_back(delivery)
    return delivery


@transaction.atomic
def _fall_back(delivery: Delivery) -> Delivery | None:
    email = Delivery.Channel.EMAIL
    is_fallback_itself = delivery.channel == email and not delivery.target
    if is_fallback_itself or not channel_module(email).configured(""):
        # Nothing left to try: the admin lists it under "undelivered".
        log.error(
            "alert.undelivered",
            delivery_id=delivery.pk,
            channel=delivery.channel,
            alert_key=delivery.message.get("key", ""),
        )
        return None
    fallback = Delivery.objects.create(
        alert=delivery.alert,
        channel=email,
        action=delivery.action,
        message=delivery.message,
        fallback_for=delivery,
    )
    log.warning("alert.fallback", delivery_id=delivery.pk, fallback_id=fallback.pk)
    delivery_queue(delivery_id=fallback.pk)
    return fallback


def deliveries_sweep(*, limit: int = 100) -> int:
    """Attempt every pending delivery that is due; return how many were tried.

    The safety net under the Celery countdowns: a lost task, a broker that was
    down at commit or a worker killed mid-send all leave a pending, due row.
    """
    due = Delivery.objects.filter(
        status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at")
    tried = 0
    for delivery_id in due.values_list("pk", flat=True)[:limit]:
        if delivery_attempt(delivery_id=delivery_id) is not None:
            tried += 1
    return tried


@transaction.atomic
def delivery_resend(*, delivery_ids: Iterable[int]) -> list[Delivery]:
    """Send failed deliveries again as new deliveries (the admin's action).

    The failed ones stay as they are, with their attempts, as the record of
    what went wrong.
    """
    failed = Delivery.objects.filter(
        pk__in=list(delivery_ids), status=Delivery.Status.FAILED
    ).order_by("pk")
    resent = []
    for delivery in failed:
        resent += _deliveries_create(
            alert=delivery.alert,
            targets=[Target(delivery.channel, delivery.target)],
            message=Message.from_dict(delivery.message),
        )
    return resent
