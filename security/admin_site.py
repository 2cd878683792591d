"""What the security app adds to the admin site (mixed into OpsAdminSite).

- ``has_permission`` needs a verified second factor, superusers included:
  every view wrapped by ``admin_view`` refuses an unverified session.
- ``login`` throttles password attempts and, once the password is right,
  sends the user on to verify a code (or to enrol a first device).
- The access review page, linked from the index under Security.
"""

from typing import TYPE_CHECKING

import structlog
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.urls import path, reverse

from security import throttle

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite

    # The checker sees the site the mixin goes into, so super() is checked.
    _AdminSiteBase = AdminSite
else:
    _AdminSiteBase = object


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self):
        username = self.data.get("username", "")
        if throttle.is_locked(username=username, request=self.request):
            log.warning("security.login_refused_throttled", username=username[:150])
            raise ValidationError(
                "Too many failed attempts for this account or from this "
                "address. Try again later.",
                code="throttled",
            )
        return super().clean()


class SecondFactorAdminSiteMixin(_AdminSiteBase):
    login_form = ThrottledAdminAuthenticationForm

    def has_permission(self, request):
        return super().has_permission(request) and request.user.is_verified()

    def login(self, request, extra_context=None):
        from security.middleware import second_factor_redirect

        user = request.user
        if (
            request.method == "GET"
            and user.is_authenticated
            and user.is_active
            and user.is_staff
            and not user.is_verified()
        ):
            return second_factor_redirect(request)
        return super().login(request, extra_context)

    def get_urls(self):
        from security.views import access_review_csv, access_review_page

        return [
            path(
                "security/access-review/",
                self.admin_view(access_review_page),
                name="security_access_review",
            ),
            path(
                "security/access-review.csv",
                self.admin_view(access_review_csv),
                name="security_access_review_csv",
            ),
            *super().get_urls(),
        ]

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if not request.user.has_perm("security.view_access_review"):
            return app_list
        entry = {
            "name": "Access review",
            "object_name": "AccessReview",
            "perms": {"view": True},
            "admin_url": reverse("admin:security_access_review"),
            "add_url": None,
            "view_only": True,
        }
        for app in app_list:
            if app["app_label"] == "security":
                app["models"].insert(0, entry)
                break
        else:
            if app_label in (None, "security"):
                app_list.append(
                    {
                        "name": "Security",
                        "app_label": "security",
                        "app_url": reverse("admin:security_access_review"),
                        "has_module_perms": True,
                        "models": [entry],
                    }
                )
        return app_list
