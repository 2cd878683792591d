"""Structured logging: one event per line, key=value (or JSON), no secrets.

Code logs a fixed event name plus context, never a sentence built at run
time::

    log = structlog.get_logger(__name__)
    log.info("payout.submitted", payout_id=payout.pk, attempt=3)

Request and task ids are bound in contextvars by the middleware and the
Celery signals, so every line of one request or task carries them.
"""

import logging
import re

import structlog

# Keys whose values never reach a log line, whatever their content.
SENSITIVE_KEY = re.compile(
    r"(?:^|_)(?:pass(?:word)?|secret|token|api_?key|authorization|cookie|"
    r"signature|otp|iban|account_?number|card_?number|pan|cvv|cvc)(?:_|$)",
    re.IGNORECASE,
)
# Card numbers (13-19 digits, optionally grouped) and IBANs inside free text.
CARD_NUMBER = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
REDACTED = "[redacted]"


def _sensitive(key) -> bool:
    return bool(SENSITIVE_KEY.search(str(key).replace("-", "_")))


def _scrub(value):
    if isinstance(value, str):
        return IBAN.sub(REDACTED, CARD_NUMBER.sub(REDACTED, value))
    if isinstance(value, dict):
        return {
            key: REDACTED if _sensitive(key) else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def redacted(value):
    """``value`` (text, or a dict or list of them) as safe to show a person:
    sensitive keys and card or bank numbers replaced. For admin pages that
    display what a provider sent."""
    return _scrub(value)


def redact(logger, method_name, event_dict):
    """structlog processor: hide sensitive keys and card or bank numbers."""
    return _scrub(event_dict)


def _shared_processors():
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.stdlib.ExtraAdder(),
    ]


def build_logging_config(*, fmt: str, level: str) -> dict:
    """Configure structlog and return the LOGGING dict for Django."""
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.processors.LogfmtRenderer(
            key_order=["timestamp", "level", "event", "logger"], drop_missing=True
        )
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    redact,
                    renderer,
                ],
                "foreign_pre_chain": _shared_processors(),
            }
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django logs every 4xx as a warning with the request; the request
            # id line from our middleware says the same with less noise.
            "django.request": {"level": "ERROR"},
            "django.db.backends": {"level": "INFO"},
        },
    }


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


logging.captureWarnings(True)
