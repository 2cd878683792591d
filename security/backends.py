import structlog
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from security import throttle

log = structlog.get_logger(__name__)


class ThrottledModelBackend(ModelBackend):
    """Django's model backend, refusing to check passwords while throttled.

    Sitting in AUTHENTICATION_BACKENDS, it throttles every view that calls
    ``authenticate()``, not only our login page. PermissionDenied stops
    Django from trying further backends and still fires user_login_failed.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if throttle.is_locked(username=username or "", request=request):
            log.warning("security.login_refused_throttled", username=username)
            raise PermissionDenied("too many failed attempts")
        return super().authenticate(
            request, username=username, password=password, **kwargs
        )
