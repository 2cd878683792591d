"""Deployment checks of our own, run by ``manage.py check --deploy``.

Their ids are ``opsadmin.*``: Django's own deployment checks already use
``security.*``.

Django checks HSTS, cookies, SSL redirect and framing; it knows nothing of a
Content-Security-Policy or of our second-factor wall, so we check those.
"""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, connection

from security.dbroles import role_findings

_REQUIRED_DIRECTIVES = ("default-src", "frame-ancestors", "object-src", "base-uri")
_AFTER_AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


@register(Tags.security, deploy=True)
def check_content_security_policy(app_configs, **kwargs):
    if "security.middleware.ContentSecurityPolicyMiddleware" not in settings.MIDDLEWARE:
        return [
            Warning(
                "No Content-Security-Policy header is sent.",
                hint="Add security.middleware.ContentSecurityPolicyMiddleware.",
                id="opsadmin.W001",
            )
        ]
    policy = settings.SECURITY_CONTENT_SECURITY_POLICY
    missing = [d for d in _REQUIRED_DIRECTIVES if d not in policy]
    unsafe = [word for word in ("'unsafe-inline'", "'unsafe-eval'") if word in policy]
    if missing or unsafe:
        return [
            Warning(
                "SECURITY_CONTENT_SECURITY_POLICY is too weak.",
                hint=f"missing {missing}, allows {unsafe}",
                id="opsadmin.W002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_second_factor_wall(app_configs, **kwargs):
    middleware = list(settings.MIDDLEWARE)
    wanted = [
        _AFTER_AUTH,
        "django_otp.middleware.OTPMiddleware",
        "security.middleware.AdminSecondFactorMiddleware",
    ]
    positions = [middleware.index(m) if m in middleware else -1 for m in wanted]
    if -1 in positions or positions != sorted(positions):
        return [
            Warning(
                "The admin's second-factor wall is not installed in order.",
                hint=f"MIDDLEWARE needs, in this order: {', '.join(wanted)}",
                id="opsadmin.W003",
            )
        ]
    if settings.AUTHENTICATION_BACKENDS != ["security.backends.ThrottledModelBackend"]:
        return [
            Warning(
                "Logins are not throttled.",
                hint="AUTHENTICATION_BACKENDS = "
                "['security.backends.ThrottledModelBackend']",
                id="opsadmin.W004",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_database_role(app_configs, databases=None, **kwargs):
    """The process's database role must not be able to get past the
    append-only rules (security.dbroles). It asks the database, so, like
    Django's own database checks, it runs only when asked to:
    ``manage.py check --deploy --database default``."""
    if connection.alias not in (databases or ()) or connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            findings = role_findings(cursor)
    except DatabaseError as error:
        return [
            Warning(
                "The database role could not be checked.",
                hint=str(error).splitlines()[0],
                id="opsadmin.W005",
            )
        ]
    if not findings:
        return []
    return [
        Warning(
            "The database role can get past the ledger's and the audit log's "
            "append-only rules.",
            hint="; ".join(findings)
            + ". Connect as the application role (manage.py database_roles).",
            id="opsadmin.W005",
        )
    ]
