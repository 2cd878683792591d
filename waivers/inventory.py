"""Every secret production needs, declared in code.

Each ``SecretSpec`` says where the value is read from (a setting, never the
environment directly, so that what is checked is what the running process
uses), who owns it, how often it is rotated, how long it must be at least,
what a test or placeholder value looks like, and, in one line, how it is
rotated. docs/runbook.md ("Secret rotation") has the full procedure, one
section per ``runbook_heading``; a test fails when a section is missing.

Settings are read defensively: a setting that this deployment does not
define (an app that is not installed yet) reads as missing, never as an
error. Provider secrets are declared once per code in ``PROVIDERS``.

Values are only ever handed to ``waivers.secrets.secret_inspect``, which
keeps no more of them than a keyed fingerprint.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

PLATFORM = "platform"
PAYMENTS = "payments"
SRE = "sre"
SECURITY = "security"
FINANCE_OPS = "finance-ops"


@dataclass(frozen=True)
class SecretSpec:
    name: str  # the environment variable that carries it
    title: str
    owner: str  # a team; SECRET_OWNER_EMAILS maps it to an address
    rotation_days: int
    min_length: int
    read: Callable[[], str | None] = field(repr=False, compare=False)
    how_to_rotate: str
    # The runbook section: the name, or its pattern for per-provider secrets.
    runbook_heading: str
    required: bool = True  # in production
    # Case-insensitive fragments that mark a test value of this kind of secret.
    test_patterns: tuple[str, ...] = ()
    # What every real value starts with (a URL's scheme and host), if anything.
    required_prefix: str = ""
    # How its absence reads: "is missing", or "has no password" for a URL.
    missing_text: str = "is missing"


def _setting(name: str) -> Callable[[], str | None]:
    return lambda: getattr(settings, name, None) or None


def _url_password(name: str) -> Callable[[], str | None]:
    """The password inside the URL setting ``name``: the host may change freely."""

    def read():
        url = getattr(settings, name, None)
        if not url:
            return None
        try:
            return urlsplit(url).password or None
        except ValueError:
            return None

    return read


def _provider(code: str, key: str) -> Callable[[], str | None]:
    def read():
        providers = getattr(settings, "PROVIDERS", {}) or {}
        return (providers.get(code) or {}).get(key) or None

    return read


def _platform_secrets() -> list[SecretSpec]:
    return [
        SecretSpec(
            name="SECRET_KEY",
            title="Django secret key (sessions, signing, password reset links)",
            owner=PLATFORM,
            rotation_days=365,
            min_length=50,
            read=_setting("SECRET_KEY"),
            how_to_rotate="New key in SECRET_KEY, old one in SECRET_KEY_PREVIOUS "
            "for a session lifetime, then remove it.",
            runbook_heading="SECRET_KEY",
            test_patterns=("django-insecure",),
        ),
        SecretSpec(
            name="SECRET_FINGERPRINT_KEY",
            title="Key of the secret fingerprints (recognises rotations)",
            owner=SECURITY,
            rotation_days=730,
            min_length=32,
            read=_setting("SECRET_FINGERPRINT_KEY"),
            how_to_rotate="Set a new random value; fingerprints are re-keyed "
            "on the next observation without counting as rotations.",
            runbook_heading="SECRET_FINGERPRINT_KEY",
            # Without it fingerprints are keyed from SECRET_KEY (see
            # waivers/fingerprints.py): weaker, but no secret goes unchecked.
            required=False,
        ),
        SecretSpec(
            name="DATABASE_URL",
            title="PostgreSQL password (inside DATABASE_URL)",
            owner=PLATFORM,
            rotation_days=90,
            min_length=16,
            read=_url_password("DATABASE_URL"),
            how_to_rotate="Create the new password with ALTER ROLE, deploy the "
            "new DATABASE_URL, then check no session uses the old one.",
            runbook_heading="DATABASE_URL",
            test_patterns=("postgres", "opsadmin"),
            missing_text="has no password (or is unset)",
        ),
        SecretSpec(
            name="REDIS_URL",
            title="Redis password (inside REDIS_URL; cache, locks, Celery broker)",
            owner=PLATFORM,
            rotation_days=90,
            min_length=16,
            read=_url_password("REDIS_URL"),
            how_to_rotate="Add the new password to the Redis ACL user, deploy "
            "the new REDIS_URL everywhere, then remove the old password.",
            runbook_heading="REDIS_URL",
            test_patterns=("redis",),
            missing_text="has no password (or is unset)",
        ),
        SecretSpec(
            name="EMAIL_HOST_PASSWORD",
            title="SMTP password (alert fallback, reminders)",
            owner=PLATFORM,
            rotation_days=180,
            min_length=12,
            read=_setting("EMAIL_HOST_PASSWORD"),
            how_to_rotate="Issue a new SMTP credential at the mail provider, "
            "deploy it, send a test mail, revoke the old one.",
            runbook_heading="EMAIL_HOST_PASSWORD",
        ),
    ]


def _provider_secrets(code: str) -> list[SecretSpec]:
    prefix = f"PROVIDER_{code.upper()}_"
    return [
        SecretSpec(
            name=prefix + "API_KEY",
            title=f"Payment provider API key ({code})",
            owner=PAYMENTS,
            rotation_days=90,
            min_length=20,
            read=_provider(code, "api_key"),
            how_to_rotate="Roll the key in the provider's dashboard with an "
            "expiry on the old one, deploy the new key, check a payout goes out.",
            runbook_heading="PROVIDER_<CODE>_API_KEY",
            test_patterns=("sk_test_", "rk_test_", "pk_test_", "_test_"),
        ),
        SecretSpec(
            name=prefix + "WEBHOOK_SECRET",
            title=f"Payment provider webhook signing secret ({code})",
            owner=PAYMENTS,
            rotation_days=180,
            min_length=24,
            read=_provider(code, "webhook_secret"),
            how_to_rotate="Deploy the new secret with the old one in "
            f"{prefix}WEBHOOK_SECRET_PREVIOUS until a time, then switch the "
            "provider to the new one.",
            runbook_heading="PROVIDER_<CODE>_WEBHOOK_SECRET",
            test_patterns=("whsec_test",),
        ),
    ]


def _integration_secrets() -> list[SecretSpec]:
    return [
        SecretSpec(
            name="SLACK_WEBHOOK_URL",
            title="Slack incoming-webhook URL (alerts)",
            owner=SRE,
            rotation_days=365,
            min_length=60,
            read=_setting("SLACK_WEBHOOK_URL"),
            how_to_rotate="Create a new incoming webhook for the channel, "
            "deploy it, send a test alert, delete the old webhook in Slack.",
            runbook_heading="SLACK_WEBHOOK_URL",
            # Slack's own documentation uses these in its sample URLs.
            test_patterns=("T00000000", "B00000000", "XXXXXXXX"),
            required_prefix="https://hooks.slack.com/",
        ),
        SecretSpec(
            name="PAGERDUTY_ROUTING_KEY",
            title="PagerDuty Events API v2 routing key (paging)",
            owner=SRE,
            rotation_days=365,
            min_length=32,
            read=_setting("PAGERDUTY_ROUTING_KEY"),
            how_to_rotate="Add a new integration key to the service, deploy "
            "it, trigger and resolve a test incident, remove the old key.",
            runbook_heading="PAGERDUTY_ROUTING_KEY",
        ),
        SecretSpec(
            name="PAGERDUTY_WEBHOOK_SECRET",
            title="PagerDuty v3 webhook signing secret (acknowledgements)",
            owner=SRE,
            rotation_days=365,
            min_length=32,
            read=_setting("PAGERDUTY_WEBHOOK_SECRET"),
            how_to_rotate="Create a second webhook subscription, deploy its "
            "secret, acknowledge a test page in PagerDuty, delete the old one.",
            runbook_heading="PAGERDUTY_WEBHOOK_SECRET",
            required=False,
        ),
        SecretSpec(
            name="RECON_TICKET_WEBHOOK_URL",
            title="Reconciliation ticket webhook URL (carries the ticket "
            "system's token)",
            owner=FINANCE_OPS,
            rotation_days=365,
            min_length=20,
            read=_setting("RECON_TICKET_WEBHOOK_URL"),
            how_to_rotate="Create a new inbound hook in the ticket system, "
            "deploy it, open a test ticket, delete the old hook.",
            runbook_heading="RECON_TICKET_WEBHOOK_URL",
            required=False,
            required_prefix="https://",
        ),
        SecretSpec(
            name="RECON_TICKET_WEBHOOK_SECRET",
            title="Reconciliation ticket webhook signing secret",
            owner=FINANCE_OPS,
            rotation_days=365,
            min_length=24,
            read=_setting("RECON_TICKET_WEBHOOK_SECRET"),
            how_to_rotate="Set the new secret in the ticket system and here in "
            "the same change window; tickets raised in between are retried.",
            runbook_heading="RECON_TICKET_WEBHOOK_SECRET",
            required=False,
        ),
    ]


def inventory(provider_codes=None) -> list[SecretSpec]:
    """Every declared secret, provider secrets once per provider code.

    The codes are those of settings.PROVIDERS unless given (the runbook
    test passes a placeholder to see every kind of secret).
    """
    if provider_codes is None:
        provider_codes = getattr(settings, "PROVIDERS", {}) or {}
    specs = _platform_secrets()
    for code in sorted(provider_codes):
        specs.extend(_provider_secrets(code))
    specs.extend(_integration_secrets())
    return specs


def secret_spec(name: str) -> SecretSpec | None:
    return next((spec for spec in inventory() if spec.name == name), None)
