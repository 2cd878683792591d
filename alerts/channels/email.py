"""E-mail: the fallback for every other channel, and a channel of its own."""

import json
import smtplib

from django.conf import settings
from django.core.mail import send_mail

from alerts.channels import DeliveryError, Message


def recipients(target: str) -> list[str]:
    if target:
        return [address.strip() for address in target.split(",") if address.strip()]
    return list(settings.ALERT_EMAIL_TO)


def configured(target: str) -> bool:
    return bool(recipients(target))


def subject(message: Message) -> str:
    state = {"trigger": "ALERT", "resolve": "RESOLVED", "notify": "NOTICE"}
    line = f"[opsadmin {state[message.action]}] {message.summary}"
    # One line, and short enough for every mail client's list view.
    return " ".join(line.split())[:200]


def text(message: Message) -> str:
    lines = [
        message.summary,
        "",
        f"severity: {message.severity}",
        f"source: {message.source}",
        f"key: {message.key}",
        f"time: {message.timestamp}",
    ]
    if message.details:
        lines += ["", json.dumps(message.details, indent=2, default=str)]
    return "\n".join(lines) + "\n"


def send(message: Message, target: str) -> None:
    if not recipients(target):
        raise DeliveryError("no recipients (ALERT_EMAIL_TO is empty)", retryable=False)
    try:
        send_mail(
            subject(message),
            text(message),
            settings.DEFAULT_FROM_EMAIL,
            recipients(target),
        )
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"{type(exc).__name__}: {str(exc)[:200]}", retryable=True
        ) from exc
