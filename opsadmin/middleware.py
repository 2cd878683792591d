import re
import time
import uuid
import zoneinfo

import structlog
from django.conf import settings
from django.utils import timezone

from opsadmin import health

log = structlog.get_logger(__name__)

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

_PROBES = {"/healthz": health.healthz, "/readyz": health.readyz}


class HealthCheckMiddleware:
    """Answer probes before host validation and HTTPS redirects.

    Kubernetes probes reach the pod by IP with a Host header that
    ALLOWED_HOSTS rightly does not list, and over plain HTTP.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = _PROBES.get(request.path_info.rstrip("/"))
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)


class RequestContextMiddleware:
    """Bind a request id to every log line of the request and log one summary."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # A proxy's id joins our logs to its own; anything else is replaced,
        # since the id also lands in audit entries.
        request_id = request.headers.get("X-Request-ID", "")
        if not REQUEST_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.monotonic()
        response = self.get_response(request)
        user = getattr(request, "user", None)
        log.info(
            "http.request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            user_id=user.pk if user is not None and user.is_authenticated else None,
        )
        response["X-Request-ID"] = request_id
        structlog.contextvars.clear_contextvars()
        return response


class OperatorTimezoneMiddleware:
    """Show times in the operator's zone, as their browser reports it.

    The admin's base template stores the browser's IANA zone in the
    ``operator_tz`` cookie; everything stays stored in UTC.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.COOKIES.get("operator_tz") or settings.OPERATOR_DEFAULT_TIME_ZONE
        try:
            timezone.activate(zoneinfo.ZoneInfo(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo(settings.OPERATOR_DEFAULT_TIME_ZONE))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
