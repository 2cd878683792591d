"""The second-factor pages (verify, enrol, step-up) and the access review.

Verify, enrol and step-up live outside the admin's URL space so that the
wall in front of it (security.middleware) does not stand in their way; each
checks the session itself.
"""

import csv
from base64 import b32encode

import qrcode
import qrcode.image.svg
import structlog
from django import forms
from django.contrib import admin
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import user_has_device

from security import services
from security.selectors import (
    CSV_HEADER,
    access_review,
    access_review_csv_row,
    enrolment_deadline,
)
from security.stepup import pop_pending_post

log = structlog.get_logger(__name__)


class CodeForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True}
        ),
        help_text="The 6 digits from your authenticator app, or a backup code.",
    )


def _next_url(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate,
        allowed_hosts={request.get_host()},
        require_https=request.is_secure(),
    ):
        return candidate
    return reverse("admin:index")


def _context(request, **extra):
    return {
        **admin.site.each_context(request),
        # No navigation: nothing behind the wall is reachable from here.
        "is_nav_sidebar_enabled": False,
        "next": _next_url(request),
        **extra,
    }


def _staff_or_login(request):
    """None when a staff session is present, else the redirect to log in."""
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        return None
    return redirect_to_login(request.get_full_path(), reverse("admin:login"))


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request):
    refused = _staff_or_login(request)
    if refused:
        return refused
    if request.user.is_verified():
        return HttpResponseRedirect(_next_url(request))
    if not user_has_device(request.user):
        return HttpResponseRedirect(
            reverse("security:enrol") + "?" + request.GET.urlencode()
        )
    form = CodeForm(request.POST or None)
    if form.is_valid():
        if services.mfa_verify(
            user=request.user, token=form.cleaned_data["token"], request=request
        ):
            return HttpResponseRedirect(_next_url(request))
        form.add_error(
            "token", "That code was not accepted. Too many failures lock you out."
        )
    return render(
        request,
        "security/verify.html",
        _context(request, form=form, title="Second factor"),
    )


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


@never_cache
@require_http_methods(["GET", "POST"])
def enrol(request):
    refused = _staff_or_login(request)
    if refused:
        return refused
    if user_has_device(request.user):
        # Enrolled already: the secret is never shown again.
        return HttpResponseRedirect(
            reverse("security:verify") + "?" + request.GET.urlencode()
        )
    deadline = enrolment_deadline(request.user)
    if timezone.now() > deadline:
        log.warning(
            "security.enrolment_refused",
            user_id=request.user.pk,
            username=request.user.get_username(),
            window_closed_at=deadline.isoformat(),
        )
        return render(
            request,
            "security/enrol_closed.html",
            _context(request, title="Enrolment has closed", deadline=deadline),
            status=403,
        )
    device = services.mfa_enrolment_device(user=request.user)
    form = CodeForm(request.POST or None)
    form.fields["token"].help_text = "The 6 digits the app shows now."
    if form.is_valid():
        codes = services.mfa_enrol_confirm(
            user=request.user, token=form.cleaned_data["token"], request=request
        )
        if codes is not None:
            return render(
                request,
                "security/backup_codes.html",
                _context(request, codes=codes, title="Your backup codes"),
            )
        form.add_error("token", "That code was not accepted; check the app's clock.")
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "security/enrol.html",
        _context(
            request,
            form=form,
            title="Set up your second factor",
            qr_svg=_qr_svg(device.config_url),
            secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
        ),
    )


@never_cache
@require_http_methods(["GET", "POST"])
def step_up(request):
    refused = _staff_or_login(request)
    if refused:
        return refused
    if not request.user.is_verified():
        return HttpResponseRedirect(
            reverse("security:verify") + "?" + request.GET.urlencode()
        )
    next_url = _next_url(request)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        if services.mfa_verify(
            user=request.user,
            token=form.cleaned_data["token"],
            request=request,
            purpose="step_up",
        ):
            pending = pop_pending_post(request, next_url)
            if pending is None:
                return HttpResponseRedirect(next_url)
            return render(
                request,
                "security/step_up_continue.html",
                _context(request, pending=pending, title="Confirm the action"),
            )
        form.add_error("token", "That code was not accepted.")
    return render(
        request,
        "security/step_up.html",
        _context(request, form=form, title="Confirm it is you"),
    )


@require_http_methods(["POST"])
def logout(request):
    """Log out before the second factor: the admin logout needs a verified session."""
    auth_logout(request)
    return HttpResponseRedirect(reverse("admin:login"))


def access_review_page(request):
    if not request.user.has_perm("security.view_access_review"):
        raise PermissionDenied
    rows = access_review()
    return render(
        request,
        "admin/security/access_review.html",
        {
            **admin.site.each_context(request),
            "title": "Access review",
            "rows": rows,
            "findings": sum(len(row.findings) for row in rows),
        },
    )


def access_review_csv(request):
    if not request.user.has_perm("security.view_access_review"):
        raise PermissionDenied
    response = HttpResponse(content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = (
        f'attachment; filename="access-review-{stamp}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for row in access_review():
        writer.writerow(access_review_csv_row(row))
    return response
