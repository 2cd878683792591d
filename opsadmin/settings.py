"""Settings for opsadmin, read from the environment.

With nothing set the project runs on embedded defaults (SQLite, a file-based
Celery broker, e-mail written to files) so it can be tried on a bare machine.
``OPSADMIN_ENV=production`` turns every default that is only fit for a laptop
into a start-up error. See docs/architecture.md for the variables.
"""

import json
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from opsadmin.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_secret,
    env_str,
)
from opsadmin.logging import build_logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("OPSADMIN_VAR_DIR", str(BASE_DIR / "var")))

ENVIRONMENT = env_choice(
    "OPSADMIN_ENV", ["development", "production"], default="development"
)
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when OPSADMIN_ENV=production")


def _development_secret(name: str, length: int = 50) -> str:
    """A random value kept in var/ so that web, worker and beat agree on it.

    Only used outside production; production reads every secret from the
    environment and refuses to start without it.
    """
    path = VAR_DIR / "development-secrets.json"
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = secrets.token_urlsafe(length)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored[name]


def _secret_key() -> str:
    if not PRODUCTION:
        return env_secret("SECRET_KEY", None) or _development_secret("SECRET_KEY")
    key = env_secret("SECRET_KEY")
    if key.startswith("django-insecure") or len(key) < 50 or len(set(key)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY is insecure: use at least 50 random characters"
        )
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "opsadmin.apps.OpsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "simple_history",
    "finance",
    "reconciliation",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "security",
    "overrides",
]

# The sandbox payment provider (sandbox/) answers like a real one over HTTP;
# demo and tests use it, production never mounts it unless told to.
SANDBOX_PROVIDER_ENABLED = env_bool("SANDBOX_PROVIDER_ENABLED", not PRODUCTION)

MIDDLEWARE = [
    "opsadmin.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "security.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "opsadmin.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "security.middleware.AdminSecondFactorMiddleware",
    "opsadmin.middleware.OperatorTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "opsadmin.urls"
WSGI_APPLICATION = "opsadmin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL through DATABASE_URL; SQLite in var/ when it is unset.
DATABASE_URL = env_str("DATABASE_URL", None)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
elif PRODUCTION:
    raise ImproperlyConfigured("DATABASE_URL must be set in production")
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "opsadmin.sqlite3"),
            "OPTIONS": {
                # Web, worker and beat share the file: wait for locks instead
                # of failing, and take the write lock when a transaction begins.
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite ignores INCLUDE columns; the covering index matters on PostgreSQL.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Redis: cache, locks and the Celery broker. Optional outside production.
REDIS_URL = env_str("REDIS_URL", None)
if PRODUCTION and not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must be set in production")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "opsadmin"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery. Without Redis the broker is a folder in var/, which several local
# processes (web, worker, beat) can share.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery-broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE: dict = {}

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-gb"
USE_I18N = False
USE_TZ = True
TIME_ZONE = "UTC"
# Shown to operators whose browser has not told us its zone yet.
OPERATOR_DEFAULT_TIME_ZONE = env_str("OPERATOR_DEFAULT_TIME_ZONE", "Europe/Berlin")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "opsadmin" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# E-mail: SMTP when EMAIL_HOST is set, otherwise files in var/mail.
EMAIL_HOST = env_str("EMAIL_HOST", None)
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
elif PRODUCTION:
    raise ImproperlyConfigured("EMAIL_HOST must be set in production")
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "opsadmin@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Finance.
SUPPORTED_CURRENCIES = env_list("SUPPORTED_CURRENCIES", ["EUR", "USD", "GBP"])
PAYOUT_SLA_HOURS = env_int("PAYOUT_SLA_HOURS", 24, minimum=1)


def _providers() -> dict[str, dict]:
    """Payment provider connections, one per code in PROVIDER_CODES.

    Each code reads PROVIDER_<CODE>_BASE_URL, _API_KEY and _WEBHOOK_SECRET.
    Outside production the sandbox code gets working local defaults.
    """
    providers = {}
    for code in env_list("PROVIDER_CODES", ["sandbox"]):
        prefix = f"PROVIDER_{code.upper()}_"
        local = not PRODUCTION and code == "sandbox"
        providers[code] = {
            "base_url": env_str(
                prefix + "BASE_URL",
                "http://127.0.0.1:8000/sandbox/v1/" if local else None,
            ),
            "api_key": env_secret(
                prefix + "API_KEY",
                "sk_test_" + _development_secret(prefix + "API_KEY", 24)
                if local
                else None,
            ),
            "webhook_secret": env_secret(
                prefix + "WEBHOOK_SECRET",
                "whsec_" + _development_secret(prefix + "WEBHOOK_SECRET", 32)
                if local
                else None,
            ),
        }
        for key, value in providers[code].items():
            if value is None:
                raise ImproperlyConfigured(f"{prefix}{key.upper()} must be set")
    return providers


PROVIDERS = _providers()
PROVIDER_CONNECT_TIMEOUT = env_int("PROVIDER_CONNECT_TIMEOUT_SECONDS", 3, minimum=1)
PROVIDER_READ_TIMEOUT = env_int("PROVIDER_READ_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOK_TOLERANCE_SECONDS = env_int("WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 64 * 1024, minimum=1024)
SANDBOX_WEBHOOK_URL = env_str(
    "SANDBOX_WEBHOOK_URL", "http://127.0.0.1:8000/webhooks/provider/sandbox/"
)

# HTTPS and cookies. Production sits behind a proxy that terminates TLS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = 31536000 if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE_SECONDS", 8 * 3600, minimum=300)
X_FRAME_OPTIONS = "DENY"

LOG_FORMAT = env_choice("LOG_FORMAT", ["logfmt", "json"], default="logfmt")
LOG_LEVEL = env_choice(
    "LOG_LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR"], default="INFO"
)
LOGGING = build_logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL)

# --- jobs and alerts ---
# Scheduled jobs (jobs/): declared in each app's ``jobs`` module, run by beat
# or by a Kubernetes CronJob (JOB_SCHEDULER=cron leaves them out of beat;
# deploy/k8s/). Alerts (alerts/): PagerDuty, Slack, e-mail as the fallback.
# See docs/runbook.md, "Scheduled jobs".
import os  # noqa: E402

from celery.schedules import crontab  # noqa: E402

from jobs.beat import job_beat_entry  # noqa: E402

INSTALLED_APPS += ["jobs", "alerts"]

JOB_SCHEDULER = env_choice("JOB_SCHEDULER", ["beat", "cron"], default="beat")
# A dead run's lock lapses after this long; the holder renews it every third.
JOB_LOCK_TTL_SECONDS = env_int("JOB_LOCK_TTL_SECONDS", 60, minimum=5)


def _heartbeat_urls() -> dict[str, str]:
    """JOB_HEARTBEAT_URL_<JOB NAME> for each job an outside monitor watches."""
    prefix = "JOB_HEARTBEAT_URL_"
    urls = {}
    for variable in os.environ:
        if variable.startswith(prefix):
            url = env_str(variable, "")
            if url and not url.startswith(("https://", "http://")):
                raise ImproperlyConfigured(f"{variable} must be an http(s) URL")
            if url:
                urls[variable.removeprefix(prefix).lower()] = url
    return urls


JOB_HEARTBEAT_URLS = _heartbeat_urls()

SLACK_WEBHOOK_URL = env_secret("SLACK_WEBHOOK_URL", "")
PAGERDUTY_ROUTING_KEY = env_secret("PAGERDUTY_ROUTING_KEY", "")
PAGERDUTY_EVENTS_URL = env_str(
    "PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue"
)
# The signing secret of the PagerDuty v3 webhook subscription that tells us
# of acknowledgements made in PagerDuty (incidents/pagerduty.py); unset, the
# endpoint answers 404.
PAGERDUTY_WEBHOOK_SECRET = env_secret("PAGERDUTY_WEBHOOK_SECRET", "")
ALERT_EMAIL_TO = env_list("ALERT_EMAIL_TO", [] if PRODUCTION else ["oncall@localhost"])
if PRODUCTION and not ALERT_EMAIL_TO:
    raise ImproperlyConfigured(
        "ALERT_EMAIL_TO must be set in production: it is where alerts go "
        "when PagerDuty and Slack cannot be reached"
    )
# Which channels a route notifies; unconfigured channels are left out, and a
# route with none left goes to e-mail.
ALERT_ROUTES = {
    "page": ["pagerduty", "slack"],
    "chat": ["slack"],
    "email": ["email"],
}
ALERT_MAX_ATTEMPTS = env_int("ALERT_MAX_ATTEMPTS", 5, minimum=1)
ALERT_RETRY_BASE_SECONDS = env_int("ALERT_RETRY_BASE_SECONDS", 30, minimum=1)
ALERT_RETRY_MAX_SECONDS = env_int("ALERT_RETRY_MAX_SECONDS", 900, minimum=1)
ALERT_CONNECT_TIMEOUT = env_int("ALERT_CONNECT_TIMEOUT_SECONDS", 3, minimum=1)
ALERT_READ_TIMEOUT = env_int("ALERT_READ_TIMEOUT_SECONDS", 10, minimum=1)

RETENTION_DAYS = {
    name: env_int(f"RETENTION_{name.upper()}_DAYS", days, minimum=1)
    for name, days in {
        "job_run_logs": 14,
        "job_runs": 90,
        "webhook_payloads": 30,
        "alert_deliveries": 90,
        "alerts": 180,
        "stuck_cases": 180,
    }.items()
}
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 1000, minimum=1)

CELERY_BEAT_SCHEDULE["alerts.sweep"] = {
    "task": "alerts.sweep",
    "schedule": 60,
    "options": {"expires": 60},
}
CELERY_BEAT_SCHEDULE["job.jobs_watchdog"] = job_beat_entry("jobs_watchdog", 60)
if JOB_SCHEDULER == "beat":
    CELERY_BEAT_SCHEDULE["job.retention_purge"] = job_beat_entry(
        "retention_purge", crontab(hour=3, minute=17)
    )


# --- security ---
# Every login goes through the throttled backend (security/backends.py).
AUTHENTICATION_BACKENDS = ["security.backends.ThrottledModelBackend"]
# How old the last OTP verification may be for a sensitive action.
STEP_UP_MAX_AGE_SECONDS = env_int("STEP_UP_MAX_AGE_SECONDS", 300, minimum=30)
SECURITY_THROTTLE_MAX_FAILURES_PER_ACCOUNT = env_int(
    "SECURITY_THROTTLE_MAX_FAILURES_PER_ACCOUNT", 5, minimum=1
)
SECURITY_THROTTLE_MAX_FAILURES_PER_ADDRESS = env_int(
    "SECURITY_THROTTLE_MAX_FAILURES_PER_ADDRESS", 20, minimum=1
)
SECURITY_THROTTLE_WINDOW_SECONDS = env_int(
    "SECURITY_THROTTLE_WINDOW_SECONDS", 900, minimum=60
)
# Proxies in front of us that append to X-Forwarded-For (0: use REMOTE_ADDR).
SECURITY_TRUSTED_PROXY_HOPS = env_int("SECURITY_TRUSTED_PROXY_HOPS", 0, minimum=0)
SECURITY_BACKUP_CODE_COUNT = 10
SECURITY_DORMANT_DAYS = env_int("SECURITY_DORMANT_DAYS", 90, minimum=1)
# A new account (or one whose devices a Security admin reset) must enrol its
# second factor within this many hours; afterwards only another reset reopens
# enrolment, so a password that leaks later cannot bind an attacker's phone.
SECURITY_ENROLMENT_WINDOW_HOURS = env_int(
    "SECURITY_ENROLMENT_WINDOW_HOURS", 72, minimum=1
)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "opsadmin")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# A history "revert" saves an old version straight onto the row, past the
# services, their state machines and their audit entries (it could restore
# a superuser flag): no admin offers it.
SIMPLE_HISTORY_REVERT_DISABLED = True
# Our own pages load scripts, styles and images only from our origin; the
# enrolment QR code is inline SVG, drawn on the server.
SECURITY_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The audit chain's daily walk and head anchor (security/jobs.py); the same
# schedule as deploy/k8s/cronjobs.yaml, for JOB_SCHEDULER=beat.
if JOB_SCHEDULER == "beat":
    CELERY_BEAT_SCHEDULE["job.verify_audit_chain"] = job_beat_entry(
        "verify_audit_chain", crontab(hour=4, minute=10)
    )

# --- waivers ---
# The waiver register, the secrets inventory and the deploy gate (waivers/).
# See docs/waivers.md and docs/runbook.md, "Secret rotation".
from datetime import datetime  # noqa: E402

from celery.schedules import crontab  # noqa: E402

INSTALLED_APPS += ["waivers"]

# Keys the fingerprints that recognise a rotated secret; derived from
# SECRET_KEY when unset (waivers/fingerprints.py says what that costs).
SECRET_FINGERPRINT_KEY = env_secret("SECRET_FINGERPRINT_KEY", "")
# The key SECRET_KEY replaced, still accepted for sessions and signatures
# while it is rotated (docs/runbook.md, "SECRET_KEY").
SECRET_KEY_FALLBACKS = [key for key in [env_secret("SECRET_KEY_PREVIOUS", "")] if key]


def _webhook_secrets_previous() -> dict[str, dict]:
    """Per provider, the webhook secret before the last rotation and its end.

    PROVIDER_<CODE>_WEBHOOK_SECRET_PREVIOUS (or _FILE) still verifies until
    PROVIDER_<CODE>_WEBHOOK_SECRET_PREVIOUS_UNTIL, an ISO 8601 time with its
    offset; the two come together, so no overlap is left open-ended.
    """
    previous = {}
    for code in PROVIDERS:
        name = f"PROVIDER_{code.upper()}_WEBHOOK_SECRET_PREVIOUS"
        secret = env_secret(name, "")
        until_text = env_str(name + "_UNTIL", "")
        if not secret and not until_text:
            continue
        if not (secret and until_text):
            raise ImproperlyConfigured(f"{name} and {name}_UNTIL are set together")
        try:
            until = datetime.fromisoformat(until_text)
        except ValueError:
            until = None
        if until is None or until.tzinfo is None:
            raise ImproperlyConfigured(
                f"{name}_UNTIL must be an ISO 8601 time with its offset, "
                "such as 2026-12-01T09:00:00+00:00"
            )
        previous[code] = {"secret": secret, "until": until}
    return previous


PROVIDER_WEBHOOK_SECRETS_PREVIOUS = _webhook_secrets_previous()
# The gate refuses an overlap window that ends further away than this.
WEBHOOK_SECRET_OVERLAP_MAX_HOURS = env_int(
    "WEBHOOK_SECRET_OVERLAP_MAX_HOURS", 72, minimum=1
)


def _reminder_days() -> list[int]:
    days = []
    for item in env_list("WAIVER_REMINDER_DAYS", ["14", "3"]):
        if not item.isdigit() or int(item) < 1:
            raise ImproperlyConfigured(
                "WAIVER_REMINDER_DAYS must be whole days of at least 1, "
                "separated by commas"
            )
        days.append(int(item))
    return sorted(set(days), reverse=True)


# Owners hear of a waiver deadline or a rotation date this many days ahead.
WAIVER_REMINDER_DAYS = _reminder_days()


def _owner_emails() -> dict[str, str]:
    """SECRET_OWNER_EMAILS: team=address pairs; unmapped teams reach Security."""
    emails = {}
    for item in env_list("SECRET_OWNER_EMAILS", []):
        team, sep, address = item.partition("=")
        if not sep or not team.strip() or "@" not in address:
            raise ImproperlyConfigured(
                "SECRET_OWNER_EMAILS must be team=address pairs separated by commas"
            )
        emails[team.strip()] = address.strip()
    return emails


SECRET_OWNER_EMAILS = _owner_emails()

CELERY_BEAT_SCHEDULE["waivers.secrets_observe"] = {
    "task": "waivers.secrets_observe",
    "schedule": 3600,
    "options": {"expires": 3600},
}
CELERY_BEAT_SCHEDULE["waivers.reminders_send"] = {
    "task": "waivers.reminders_send",
    "schedule": crontab(hour=7, minute=30),
    "options": {"expires": 6 * 3600},
}

# --- provider and sandbox ---
if SANDBOX_PROVIDER_ENABLED:
    INSTALLED_APPS.append("sandbox")
# How the sandbox provider behaves (sandbox/): when it settles what it
# accepted, how long a "timeout" answer takes, and how often it retries a
# webhook our endpoint did not take.
SANDBOX_AUTO_SETTLE = env_bool("SANDBOX_AUTO_SETTLE", True)
SANDBOX_SETTLE_AFTER_SECONDS = env_int("SANDBOX_SETTLE_AFTER_SECONDS", 5, minimum=0)
SANDBOX_TIMEOUT_SECONDS = env_int(
    "SANDBOX_TIMEOUT_SECONDS", PROVIDER_READ_TIMEOUT + 5, minimum=1
)
SANDBOX_WEBHOOK_MAX_RETRIES = env_int("SANDBOX_WEBHOOK_MAX_RETRIES", 8, minimum=0)
# A committed withdrawal queues its payout at once (finance.tasks.start_payout);
# the payout_sweep job picks up what a lost task or a missing webhook left.
PAYOUT_AUTO_START = env_bool("PAYOUT_AUTO_START", True)
PAYOUT_MAX_ATTEMPTS = env_int("PAYOUT_MAX_ATTEMPTS", 20, minimum=1)
PAYOUT_POLL_AFTER_MINUTES = env_int("PAYOUT_POLL_AFTER_MINUTES", 30, minimum=1)
PAYOUT_SWEEP_GRACE_MINUTES = env_int("PAYOUT_SWEEP_GRACE_MINUTES", 5, minimum=1)
PAYOUT_SWEEP_BATCH = env_int("PAYOUT_SWEEP_BATCH", 500, minimum=1)
# A minute-scale recovery loop, so it stays in beat like the watchdog even
# with JOB_SCHEDULER=cron.
CELERY_BEAT_SCHEDULE["job.payout_sweep"] = job_beat_entry("payout_sweep", 60)

# --- stuck detection and daily report ---
INSTALLED_APPS += ["stuck"]

# A detection run that opens more new stuck cases than this pages the
# on-call (stuck/jobs.py). A few new cases a run are the operators' daily
# work, not a page.
STUCK_ALERT_NEW_CASES_THRESHOLD = env_int(
    "STUCK_ALERT_NEW_CASES_THRESHOLD", 10, minimum=0
)
# How many cases one Safe Retry action may take: each is a provider call
# made while the operator's page waits.
STUCK_SAFE_RETRY_MAX_CASES = env_int("STUCK_SAFE_RETRY_MAX_CASES", 20, minimum=1)
# Who receives the daily reconciliation report (comma-separated e-mails).
DAILY_REPORT_RECIPIENTS = env_list("DAILY_REPORT_RECIPIENTS", [])
if PRODUCTION and not DAILY_REPORT_RECIPIENTS:
    raise ImproperlyConfigured("DAILY_REPORT_RECIPIENTS must be set in production")
# The same schedules as deploy/k8s/cronjobs.yaml, for JOB_SCHEDULER=beat.
if JOB_SCHEDULER == "beat":
    CELERY_BEAT_SCHEDULE["job.detect_stuck_finance_jobs"] = job_beat_entry(
        "detect_stuck_finance_jobs", 300
    )
    CELERY_BEAT_SCHEDULE["job.daily_reconciliation_report"] = job_beat_entry(
        "daily_reconciliation_report", crontab(hour=2, minute=30)
    )

# --- overrides ---
# How long an override request waits for its approver before it expires.
OVERRIDE_REQUEST_TTL_MINUTES = env_int("OVERRIDE_REQUEST_TTL_MINUTES", 120, minimum=5)
# The on-call Approver hears of a new request on each channel their on-call
# profile reaches; with nobody on call, this alert route (ALERT_ROUTES) does.
OVERRIDES_NOTIFY_ROUTE = env_choice(
    "OVERRIDES_NOTIFY_ROUTE", list(ALERT_ROUTES), default="chat"
)
# Prefix for links in notifications, e.g. https://ops.example.com (no slash).
OVERRIDES_LINK_BASE_URL = env_str("OVERRIDES_LINK_BASE_URL", "")
if JOB_SCHEDULER == "beat":
    CELERY_BEAT_SCHEDULE["job.override_requests_expire"] = job_beat_entry(
        "override_requests_expire", 60
    )

# --- incidents ---
# Incidents, on-call rotations, the escalation matrix, escalation tests and
# tabletop exercises (incidents/, docs/incident-playbook.md). Escalations
# advance in the ``incidents_tick`` job.
import zoneinfo  # noqa: E402

INSTALLED_APPS += ["incidents"]


def _incidents_link_base_url() -> str:
    """Where the acknowledgement links in pages point: this site, absolute."""
    default = "http://127.0.0.1:8000"
    if PRODUCTION:
        host = ALLOWED_HOSTS[0]
        default = "" if host.startswith((".", "*")) else f"https://{host}"
    url = env_str("INCIDENTS_LINK_BASE_URL", default).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ImproperlyConfigured(
            "INCIDENTS_LINK_BASE_URL must be the site's http(s) URL (the first "
            "ALLOWED_HOSTS entry is a wildcard, so it cannot be guessed)"
        )
    return url


def _incidents_time_zone() -> str:
    name = env_str("INCIDENTS_TIME_ZONE", "Europe/Berlin")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            "INCIDENTS_TIME_ZONE must be an IANA zone such as Europe/Berlin"
        ) from None
    return name


def _job_severity_levels() -> dict[str, int]:
    """INCIDENTS_JOB_SEVERITY_LEVELS: ``critical=2,error=3`` (job severity =
    incident level); a failing job of an unlisted severity only alerts."""
    levels = {}
    for item in env_list("INCIDENTS_JOB_SEVERITY_LEVELS", ["critical=2"]):
        severity, _, level = item.partition("=")
        if severity not in ("critical", "error", "warning", "info"):
            raise ImproperlyConfigured(
                "INCIDENTS_JOB_SEVERITY_LEVELS: each item is <job severity>="
                "<incident level>, e.g. critical=2"
            )
        if not level.isdigit() or int(level) < 1:
            raise ImproperlyConfigured(
                "INCIDENTS_JOB_SEVERITY_LEVELS: the level must be a number (1 = Sev1)"
            )
        levels[severity] = int(level)
    return levels


INCIDENTS_LINK_BASE_URL = _incidents_link_base_url()
INCIDENTS_ACK_LINK_MAX_AGE_HOURS = env_int(
    "INCIDENTS_ACK_LINK_MAX_AGE_HOURS", 72, minimum=1
)
# Night, for severities that do not page at night, in INCIDENTS_TIME_ZONE.
INCIDENTS_TIME_ZONE = _incidents_time_zone()
INCIDENTS_NIGHT_STARTS_HOUR = env_int("INCIDENTS_NIGHT_STARTS_HOUR", 22, minimum=0)
INCIDENTS_NIGHT_ENDS_HOUR = env_int("INCIDENTS_NIGHT_ENDS_HOUR", 8, minimum=0)
if max(INCIDENTS_NIGHT_STARTS_HOUR, INCIDENTS_NIGHT_ENDS_HOUR) > 23:
    raise ImproperlyConfigured("INCIDENTS_NIGHT_*_HOUR must be hours, 0 to 23")
INCIDENTS_JOB_SEVERITY_LEVELS = _job_severity_levels()

# Every 30 s: an escalation step is at most that late. Registered as a job so
# the watchdog pages when escalations stop advancing.
CELERY_BEAT_SCHEDULE["job.incidents_tick"] = job_beat_entry("incidents_tick", 30)

# --- reconciliation (deep scan) ---
from celery.schedules import crontab  # noqa: E402

# The scan may read from a replica: one server (a snapshot id means nothing
# on another), with hot_standby_feedback on. Without it, the primary.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", None)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_REPLICA_URL)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
RECON_DATABASE_ALIAS = "replica" if DATABASE_REPLICA_URL else "default"
# Each check's id span is cut into this many ranges (one query each).
RECON_SCAN_RANGES = env_int("RECON_SCAN_RANGES", 16, minimum=1)
# Processes scanning at once in the weekly job: its coordinator plus
# RECON_SCAN_PARALLEL - 1 Celery helpers.
RECON_SCAN_PARALLEL = env_int("RECON_SCAN_PARALLEL", 2, minimum=1)
# A range claimed longer ago than this is taken back from its worker.
RECON_RANGE_LEASE_SECONDS = env_int("RECON_RANGE_LEASE_SECONDS", 3600, minimum=60)


def _priority_bands() -> list[int]:
    raw = env_list("RECON_TICKET_PRIORITY_BANDS", ["10000", "100000", "1000000"])
    try:
        bands = [int(value) for value in raw]
    except ValueError:
        bands = []
    if len(bands) != 3 or not 0 < bands[0] < bands[1] < bands[2]:
        raise ImproperlyConfigured(
            "RECON_TICKET_PRIORITY_BANDS must be three increasing positive "
            "amounts in minor units (medium, high, critical from), e.g. "
            "10000,100000,1000000"
        )
    return bands


RECON_TICKET_PRIORITY_BANDS = _priority_bands()
RECON_TICKET_WEBHOOK_URL = env_str("RECON_TICKET_WEBHOOK_URL", "")
if RECON_TICKET_WEBHOOK_URL and not RECON_TICKET_WEBHOOK_URL.startswith(
    "https://" if PRODUCTION else ("https://", "http://")
):
    raise ImproperlyConfigured(
        "RECON_TICKET_WEBHOOK_URL must be an https:// URL"
        + ("" if PRODUCTION else " (or http:// outside production)")
    )
RECON_TICKET_WEBHOOK_SECRET = env_secret("RECON_TICKET_WEBHOOK_SECRET", "")
RECON_TICKET_WEBHOOK_TIMEOUT_SECONDS = env_int(
    "RECON_TICKET_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1
)
RECON_TICKET_WEBHOOK_MAX_ATTEMPTS = env_int(
    "RECON_TICKET_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1
)
RECON_TICKET_WEBHOOK_BACKOFF_SECONDS = env_int(
    "RECON_TICKET_WEBHOOK_BACKOFF_SECONDS", 30, minimum=1
)
# The same schedule as deploy/k8s/cronjobs.yaml, for JOB_SCHEDULER=beat:
# Sunday night, when the platform is quietest.
if JOB_SCHEDULER == "beat":
    CELERY_BEAT_SCHEDULE["job.deep_reconciliation"] = job_beat_entry(
        "deep_reconciliation", crontab(day_of_week="sun", hour=3, minute=30)
    )
# Re-queues tracker deliveries whose message was lost; a recovery loop, so
# it stays in beat whatever the job scheduler.
CELERY_BEAT_SCHEDULE["reconciliation-ticket-deliveries"] = {
    "task": "reconciliation.tasks.ticket_deliveries_sweep_task",
    "schedule": 600.0,
}
