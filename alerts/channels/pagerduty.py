"""PagerDuty Events API v2: one event per trigger or resolve.

A trigger and its resolve carry the same ``dedup_key`` (the alert's key), so
PagerDuty opens one incident and closes that one.
"""

from typing import Any

from django.conf import settings

from alerts.channels import Message, post_json

# PagerDuty's own limit on the summary.
SUMMARY_MAX = 1024


def routing_key(target: str) -> str:
    return target or settings.PAGERDUTY_ROUTING_KEY


def configured(target: str) -> bool:
    return bool(routing_key(target))


def event(message: Message, target: str) -> dict:
    body: dict[str, Any] = {
        "routing_key": routing_key(target),
        "event_action": "resolve" if message.action == "resolve" else "trigger",
        "dedup_key": message.key,
    }
    if message.action != "resolve":
        body["payload"] = {
            "summary": message.summary[:SUMMARY_MAX],
            "source": message.source,
            "severity": message.severity,
            "timestamp": message.timestamp,
            "component": message.component,
            "group": message.group,
            "class": message.alert_class,
            "custom_details": message.details,
        }
    return body


def send(message: Message, target: str) -> int:
    return post_json(settings.PAGERDUTY_EVENTS_URL, event(message, target))
