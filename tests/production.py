"""A correct production configuration, for tests that start a process with it.

``production_env`` is the environment of ``OPSADMIN_ENV=production`` with
every secret of the inventory (waivers/inventory.py) present and
production-grade, on the test database, so that ``manage.py check --deploy``
reports nothing unless a test changes one variable to see it noticed.
"""

import os
import secrets


def good_secrets() -> dict[str, str]:
    """Production-grade values for every required secret, fresh each call.

    Hex only: no word a placeholder check looks for can appear in it.
    """
    return {
        "SECRET_KEY": secrets.token_hex(40),
        "SECRET_FINGERPRINT_KEY": secrets.token_hex(24),
        "DATABASE_PASSWORD": secrets.token_hex(16),
        "REDIS_PASSWORD": secrets.token_hex(16),
        "EMAIL_HOST_PASSWORD": secrets.token_hex(12),
        "PROVIDER_ACME_API_KEY": "sk_live_" + secrets.token_hex(16),
        "PROVIDER_ACME_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(20),
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T04Q7LQ2D/B06H1K2M3N4/"
        + secrets.token_hex(12),
        "PAGERDUTY_ROUTING_KEY": secrets.token_hex(16),
    }


def production_env(
    tmp_path,
    database_name: str,
    *,
    settings_module: str = "opsadmin.settings",
    **overrides,
) -> dict[str, str]:
    """A complete, correct production environment on the test database.

    The database trusts local connections, so the password in the URL is
    there for the check and ignored by the server.
    """
    values = good_secrets()
    env = {
        "PATH": os.environ["PATH"],
        "OPSADMIN_VAR_DIR": str(tmp_path),
        "OPSADMIN_ENV": "production",
        "DJANGO_SETTINGS_MODULE": settings_module,
        "SECRET_KEY": values["SECRET_KEY"],
        "SECRET_FINGERPRINT_KEY": values["SECRET_FINGERPRINT_KEY"],
        "ALLOWED_HOSTS": "ops.acme.invalid",
        "DATABASE_URL": f"postgres://postgres:{values['DATABASE_PASSWORD']}"
        f"@127.0.0.1:5432/{database_name}",
        "REDIS_URL": f"redis://:{values['REDIS_PASSWORD']}@127.0.0.1:6379/0",
        "EMAIL_HOST": "smtp.acme.invalid",
        "EMAIL_HOST_PASSWORD": values["EMAIL_HOST_PASSWORD"],
        "ALERT_EMAIL_TO": "oncall@acme.invalid",
        "DAILY_REPORT_RECIPIENTS": "finance-ops@acme.invalid",
        "PROVIDER_CODES": "acme",
        "PROVIDER_ACME_BASE_URL": "https://api.acme.invalid/",
        "PROVIDER_ACME_API_KEY": values["PROVIDER_ACME_API_KEY"],
        "PROVIDER_ACME_WEBHOOK_SECRET": values["PROVIDER_ACME_WEBHOOK_SECRET"],
        "SLACK_WEBHOOK_URL": values["SLACK_WEBHOOK_URL"],
        "PAGERDUTY_ROUTING_KEY": values["PAGERDUTY_ROUTING_KEY"],
    }
    env.update(overrides)
    return env
