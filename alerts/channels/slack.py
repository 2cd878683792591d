"""Slack incoming webhooks: a plain ``text`` (notifications, old clients) and
``blocks`` for the channel itself."""

import json
from typing import Any

from django.conf import settings

from alerts.channels import Message, post_json

_HEADINGS = {
    "trigger": ":rotating_light: {severity}: alert",
    "resolve": ":white_check_mark: resolved",
    "notify": ":bell: {severity}: notification",
}
# Slack's own limits on a header's text and a section field.
HEADER_MAX = 150
FIELD_MAX = 2000


def webhook_url(target: str) -> str:
    return target or settings.SLACK_WEBHOOK_URL


def configured(target: str) -> bool:
    return bool(webhook_url(target))


def _field(name: str, value) -> dict:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return {"type": "mrkdwn", "text": f"*{name}*\n{text}"[:FIELD_MAX]}


def body(message: Message) -> dict:
    heading = _HEADINGS[message.action].format(severity=message.severity.upper())
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": heading[:HEADER_MAX]},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": message.summary}},
    ]
    if message.details:
        # Slack allows at most ten fields in one section.
        fields = [_field(k, v) for k, v in list(message.details.items())[:10]]
        blocks.append({"type": "section", "fields": fields})
    context = " | ".join(
        part for part in (message.source, message.key, message.timestamp) if part
    )
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}
    )
    return {"text": f"{heading}: {message.summary}", "blocks": blocks}


def send(message: Message, target: str) -> int:
    return post_json(webhook_url(target), body(message))
