"""Where alerts go: one module per channel, each of the same shape.

A channel module has ``configured(target) -> bool`` and
``send(message, target) -> int | None`` (the HTTP status, if any). ``send``
raises ``DeliveryError`` saying whether trying again later could help.
``target`` is the channel's address for one recipient (a PagerDuty routing
key, a Slack webhook URL, e-mail addresses separated by commas); empty means
the default from settings.
"""

from dataclasses import asdict, dataclass, field

import requests
from django.conf import settings

# PagerDuty's severities; Slack and e-mail show them as they are.
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True)
class Message:
    """What is said, independent of the channel that says it."""

    summary: str
    severity: str = "error"
    source: str = "opsadmin"
    # The dedup key: the alert's key, so a resolve finds its trigger.
    key: str = ""
    # "trigger", "resolve" or "notify".
    action: str = "trigger"
    component: str = ""
    group: str = ""
    alert_class: str = ""
    details: dict = field(default_factory=dict)
    timestamp: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Message":
        return cls(**data)


class DeliveryError(Exception):
    def __init__(
        self,
        error: str,
        *,
        retryable: bool,
        http_status: int | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(error)
        self.error = error
        self.retryable = retryable
        self.http_status = http_status
        self.retry_after = retry_after


def post_json(url: str, body: dict) -> int:
    """POST ``body`` as JSON; return the 2xx status or raise DeliveryError.

    A 400 says the request itself is wrong and will be wrong next time too;
    429 and 5xx (and no answer at all) are worth another try. Other 4xx
    (a revoked webhook, a wrong key) will not heal by waiting either.
    """
    try:
        response = requests.post(
            url,
            json=body,
            timeout=(settings.ALERT_CONNECT_TIMEOUT, settings.ALERT_READ_TIMEOUT),
        )
    except requests.RequestException as exc:
        raise DeliveryError(type(exc).__name__, retryable=True) from exc
    status = response.status_code
    if 200 <= status < 300:
        return status
    retry_after = response.headers.get("Retry-After", "")
    raise DeliveryError(
        f"HTTP {status}: {response.text[:200]}",
        retryable=status == 429 or status >= 500,
        http_status=status,
        retry_after=int(retry_after) if retry_after.isdigit() else None,
    )


def channel_module(name: str):
    from alerts.channels import email, pagerduty, slack

    return {"pagerduty": pagerduty, "slack": slack, "email": email}[name]
