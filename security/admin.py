"""Admin for staff accounts, roles, MFA devices and the audit log.

Privileges change only through audited services with a fresh second factor:
roles on the user's "Roles" page, devices through the "Reset MFA" action.
The user form itself cannot touch roles, direct permissions, staff or
superuser flags; superuser is granted from the command line only
(break-glass, see docs/runbook.md).
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django_otp.plugins.otp_totp.models import TOTPDevice
from simple_history.admin import SimpleHistoryAdmin

from opsadmin.admin import ReadOnlyAdmin
from security import services
from security.audit import audit_record
from security.models import AuditEntry, BackupCodeDevice
from security.roles import ROLES
from security.stepup import (
    StepUpAdminMixin,
    step_up_action,
    step_up_is_fresh,
    step_up_redirect,
    step_up_required,
)

User = get_user_model()

for model in (User, Group, TOTPDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "actor_username", "action", "target", "ip")
    list_filter = ("action",)
    search_fields = ("actor_username", "target_repr", "target_id", "request_id")
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="target")
    def target(self, entry):
        if not entry.target_type:
            return ""
        return f"{entry.target_type} {entry.target_id}: {entry.target_repr}"


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(ReadOnlyAdmin):
    # Never the key: the secret is shown once, during enrolment, and no more.
    fields = list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    search_fields = ("user__username",)


@admin.register(BackupCodeDevice)
class BackupCodeDeviceAdmin(ReadOnlyAdmin):
    fields = list_display = ("user", "name", "confirmed", "unused_codes")
    search_fields = ("user__username",)

    @admin.display(description="unused codes")
    def unused_codes(self, device):
        return device.remaining()


@admin.register(Group)
class RoleGroupAdmin(ReadOnlyAdmin):
    """Roles are defined in code (security/roles.py, <app>/roles.py)."""

    fields = ("name", "permission_list")
    list_display = ("name",)

    @admin.display(description="permissions")
    def permission_list(self, group):
        perms = group.permissions.select_related("content_type").order_by(
            "content_type__app_label", "codename"
        )
        return ", ".join(f"{p.content_type.app_label}.{p.codename}" for p in perms)


class RolesForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {text}") for name, text in ROLES.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    reason = forms.CharField(
        max_length=500, help_text="Why: ticket, request, approval reference."
    )


class MfaResetForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        help_text="How the user's identity was confirmed and the request reference.",
    )


@admin.register(User)
class StaffUserAdmin(StepUpAdminMixin, SimpleHistoryAdmin, UserAdmin):
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Access",
            {
                "fields": (
                    "is_active",
                    "roles_link",
                    "is_staff",
                    "is_superuser",
                    "direct_permissions",
                )
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = (
        "roles_link",
        "is_staff",
        "is_superuser",
        "direct_permissions",
        "last_login",
        "date_joined",
    )
    list_display = (
        "username",
        "email",
        "role_names",
        "is_staff",
        "is_superuser",
        "is_active",
        "last_login",
    )
    actions = ["reset_mfa"]
    # The add and password forms carry passwords: ask for the code before
    # showing them rather than keeping their POST for replay.
    step_up_on_get = True

    def get_urls(self):
        return [
            path(
                "<id>/roles/",
                self.admin_site.admin_view(self.roles_view),
                name="auth_user_roles",
            ),
            *super().get_urls(),
        ]

    def has_manage_roles_permission(self, request):
        return request.user.has_perm("security.manage_roles")

    def has_reset_mfa_permission(self, request):
        return request.user.has_perm("security.reset_mfa")

    @admin.display(description="roles")
    def role_names(self, user):
        return ", ".join(sorted(group.name for group in user.groups.all()))

    @admin.display(description="roles")
    def roles_link(self, user):
        if user.pk is None:
            return "-"
        url = reverse("admin:auth_user_roles", args=[user.pk])
        return format_html(
            '{} <a href="{}">Change roles</a>', self.role_names(user) or "none", url
        )

    @admin.display(description="permissions outside roles")
    def direct_permissions(self, user):
        perms = user.user_permissions.select_related("content_type")
        return (
            ", ".join(f"{p.content_type.app_label}.{p.codename}" for p in perms)
            or "none"
        )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def save_model(self, request, obj, form, change):
        before = {name: form.initial.get(name) for name in form.changed_data}
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="user.changed" if change else "user.created",
            target=obj,
            before=before if change else None,
            # Field names only for the password: never the hash.
            after={
                name: "(changed)" if "password" in name else form.cleaned_data[name]
                for name in form.changed_data
            },
            request=request,
        )

    def user_change_password(self, request, id, form_url=""):
        if not step_up_is_fresh(request):
            return step_up_redirect(request, keep_post=False)
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            audit_record(
                actor=request.user,
                action="user.password_set",
                target=self.get_object(request, unquote(id)),
                request=request,
            )
        return response

    @method_decorator(step_up_required)
    def roles_view(self, request, id):
        user = self.get_object(request, unquote(id))
        if user is None:
            raise Http404
        if not self.has_manage_roles_permission(request):
            raise PermissionDenied
        current = sorted(
            user.groups.filter(name__in=ROLES).values_list("name", flat=True)
        )
        form = RolesForm(request.POST or None, initial={"roles": current})
        if form.is_valid():
            try:
                services.user_set_roles(
                    user=user,
                    roles=form.cleaned_data["roles"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
            except services.SecurityError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"Roles of {user} set to: "
                    f"{', '.join(form.cleaned_data['roles']) or 'none'}.",
                )
                return HttpResponseRedirect(
                    reverse("admin:auth_user_change", args=[user.pk])
                )
        return TemplateResponse(
            request,
            "admin/security/user_roles.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Roles of {user}",
                "opts": self.opts,
                "original": user,
                "form": form,
            },
        )

    @admin.action(
        description="Reset MFA devices (lost device)", permissions=["reset_mfa"]
    )
    @step_up_action
    def reset_mfa(self, request, queryset):
        form = MfaResetForm(request.POST if "reason" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/security/mfa_reset_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Reset MFA devices",
                    "opts": self.opts,
                    "users": queryset,
                    "form": form,
                    "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                },
            )
        done, skipped = [], []
        for user in queryset:
            try:
                services.mfa_reset(
                    user=user,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
            except services.SecurityError as exc:
                skipped.append(f"{user} ({exc})")
            else:
                done.append(str(user))
        if done:
            self.message_user(
                request,
                f"MFA devices reset for {len(done)} user(s): {', '.join(done)}. "
                "They enrol again at their next login.",
            )
        if skipped:
            self.message_user(
                request, f"Skipped: {'; '.join(skipped)}", level=messages.WARNING
            )
        return None
