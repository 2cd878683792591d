"""Failed-attempt counters per account and per address.

Password and OTP failures share the counters: an attacker who has the
password gains nothing by switching to guessing codes. Counters live in the
cache (Redis whenever REDIS_URL is set, so every web process sees the same
numbers) in fixed windows of ``SECURITY_THROTTLE_WINDOW_SECONDS`` that start
at the first failure. A success clears the account's counter only once the
second factor is verified, never after the password alone.

Locking an account by name lets anyone who knows a username keep that user
out for one window; that is the accepted price of stopping guessing, and the
per-address limit is set higher than the per-account one so that one office
behind one address is not locked out by a single person.
"""

import structlog
from django.conf import settings
from django.core.cache import cache

from security.net import client_ip

log = structlog.get_logger(__name__)


def _account_key(username: str) -> str:
    return "security:failures:account:" + username.strip().lower()[:150]


def _address_key(ip: str) -> str:
    return "security:failures:address:" + ip


def _count(key: str) -> int:
    return int(cache.get(key) or 0)


def is_locked(*, username: str, request) -> bool:
    """True when either counter has reached its limit.

    Without a request (authenticate() called from a shell or a test client)
    only the account's counter applies.
    """
    account = _count(_account_key(username)) if username else 0
    address = _count(_address_key(client_ip(request))) if request else 0
    return (
        account >= settings.SECURITY_THROTTLE_MAX_FAILURES_PER_ACCOUNT
        or address >= settings.SECURITY_THROTTLE_MAX_FAILURES_PER_ADDRESS
    )


def _increment(key: str) -> int:
    window = settings.SECURITY_THROTTLE_WINDOW_SECONDS
    # add() is a no-op when the key exists, so the window starts at the first
    # failure; incr() is atomic on Redis.
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=window)
        return 1


def record_failure(*, username: str, request, kind: str) -> bool:
    """Count one failure; return True when this failure locks account or address."""
    ip = client_ip(request) if request else ""
    account = _increment(_account_key(username)) if username else 0
    address = _increment(_address_key(ip)) if ip else 0
    locks_now = (
        account == settings.SECURITY_THROTTLE_MAX_FAILURES_PER_ACCOUNT
        or address == settings.SECURITY_THROTTLE_MAX_FAILURES_PER_ADDRESS
    )
    log.warning(
        "security.attempt_failed",
        kind=kind,
        username=username[:150],
        ip=ip,
        account_failures=account,
        address_failures=address,
        locked=locks_now,
    )
    return locks_now


def clear_account(username: str) -> None:
    cache.delete(_account_key(username))
