from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_otp import user_has_device

from security.audit import audit_record

# Admin pages that must answer before the second factor: logging in and out.
_OPEN_ADMIN_VIEWS = {"login", "logout"}
# Admin plumbing not worth an audit entry per superuser page view.
_UNAUDITED_ADMIN_VIEWS = {"jsi18n"}


def second_factor_redirect(request):
    """Where an authenticated staff user without a verified device must go."""
    name = "security:verify" if user_has_device(request.user) else "security:enrol"
    query = urlencode({"next": request.get_full_path()})
    return HttpResponseRedirect(f"{reverse(name)}?{query}")


class AdminSecondFactorMiddleware:
    """The second-factor wall in front of every URL of the admin site.

    Resolved by URL namespace, so it covers every page any app registers on
    the site (ModelAdmin views, custom ``get_urls`` views, even one that
    forgot ``admin_view``) and every session, whichever view logged it in.
    The site itself refuses unverified users too (``has_permission``); this
    is the outer wall and the one that sends people to enrol or verify.

    It also refuses POSTs to simple-history's version pages (see below) and
    writes the audit trail of break-glass use: every admin request of a
    superuser. Superuser power used outside the web (``manage.py shell``)
    is not seen here; that needs shell access to production, which the
    deployment grants separately.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or admin.site.name not in match.namespaces:
            return None
        if match.url_name in _OPEN_ADMIN_VIEWS:
            return None
        user = request.user
        if not user.is_authenticated or not (user.is_staff and user.is_active):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not user.is_verified():
            return second_factor_redirect(request)
        if request.method == "POST" and match.url_name.endswith("_simple_history"):
            # simple-history's version page saves its form on POST whatever
            # SIMPLE_HISTORY_REVERT_DISABLED says, with the old version's
            # values in every read-only field (a superuser flag included):
            # a write past the services, step-up and audit. Refused here
            # for every ModelAdmin of every app.
            raise PermissionDenied("history versions are read-only")
        if user.is_superuser and match.url_name not in _UNAUDITED_ADMIN_VIEWS:
            audit_record(
                actor=user,
                action="superuser.request",
                after={"method": request.method, "path": request.path[:500]},
                request=request,
            )
        return None


class ContentSecurityPolicyMiddleware:
    """Send SECURITY_CONTENT_SECURITY_POLICY on every response.

    One fixed policy with no per-request nonces (no template of ours has
    inline script), so a few lines here instead of a dependency. A view that
    set its own header keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.SECURITY_CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
