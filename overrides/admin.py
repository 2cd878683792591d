"""The override workflow in the admin: submit, review, approve, reject, withdraw.

Requests are never edited here (nobody has the change permission); the
change page is the request's review page. Each button posts to its own
URL, which calls one service; the services enforce the rules whatever the
page showed. Approving needs a fresh second factor (security.stepup) and
executes at once, in the same click.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from overrides import services
from overrides.actions import ACTIONS, action_get, target_get
from overrides.errors import ActionNotApplicable, InvalidParams, OverrideError
from overrides.forms import ApproveForm, CloseForm, SubmitForm, TargetActionForm
from overrides.models import OverrideRequest
from overrides.selectors import (
    audit_trail,
    overrides_for_target,
    overrides_per_week,
)
from security.stepup import step_up_is_fresh, step_up_redirect

Status = OverrideRequest.Status


def _target_admin_url(kind: str, pk: int) -> str | None:
    """The operation's admin page, once finance registers one (None until then)."""
    try:
        return reverse(f"admin:finance_{kind}_change", args=[pk])
    except NoReverseMatch:
        return None


@admin.register(OverrideRequest)
class OverrideRequestAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "action_label",
        "target",
        "doer",
        "approver",
        "submitted_at",
        "expires_at",
    )
    list_filter = ("status", "action", "target_kind")
    search_fields = ("=id", "=target_id", "ticket_reference", "doer__username")
    list_select_related = ("doer", "approver")
    date_hierarchy = "submitted_at"
    actions = None
    change_list_template = "admin/overrides/overriderequest/change_list.html"

    # Nobody edits or deletes a request: the workflow buttons are the only
    # way it moves, and the database refuses everything else.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="action")
    def action_label(self, override):
        chosen = ACTIONS.get(override.action)
        return chosen.label if chosen else override.action

    @admin.display(description="target")
    def target(self, override):
        text = f"{override.target_kind} {override.target_id}"
        url = _target_admin_url(override.target_kind, override.target_id)
        return format_html('<a href="{}">{}</a>', url, text) if url else text

    def get_urls(self):
        info = "overrides_overriderequest"
        view = self.admin_site.admin_view
        return [
            path("weekly/", view(self.weekly_view), name=f"{info}_weekly"),
            path(
                "<path:object_id>/approve/",
                view(self.approve_view),
                name=f"{info}_approve",
            ),
            path(
                "<path:object_id>/execute/",
                view(self.execute_view),
                name=f"{info}_execute",
            ),
            path(
                "<path:object_id>/reject/",
                view(self.reject_view),
                name=f"{info}_reject",
            ),
            path(
                "<path:object_id>/withdraw/",
                view(self.withdraw_view),
                name=f"{info}_withdraw",
            ),
            *super().get_urls(),
        ]

    def _context(self, request, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            **extra,
        }

    def _detail_url(self, override) -> str:
        return reverse("admin:overrides_overriderequest_change", args=[override.pk])

    def _get(self, request, object_id) -> OverrideRequest:
        override = self.get_object(request, unquote(object_id))
        if override is None:
            raise Http404
        return override

    # --- the doer: a new request ------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        choose = TargetActionForm(request.GET or None)
        target = chosen = None
        if choose.is_valid():
            try:
                chosen = action_get(choose.cleaned_data["action"])
                target = target_get(
                    choose.cleaned_data["target_kind"], choose.cleaned_data["target_id"]
                )
                if choose.cleaned_data["target_kind"] not in chosen.target_kinds:
                    raise ActionNotApplicable(
                        f"this action applies to: {', '.join(chosen.target_kinds)}"
                    )
            except OverrideError as exc:
                choose.add_error(None, str(exc))
                target = None
        if target is None or chosen is None:
            return TemplateResponse(
                request,
                "admin/overrides/overriderequest/choose.html",
                self._context(
                    request,
                    title="Request an override: target and action",
                    form=choose,
                    actions=ACTIONS.values(),
                ),
            )
        return self._submit_step(request, choose.cleaned_data, target, chosen)

    def _submit_step(self, request, chosen_data, target, chosen):
        posted = request.method == "POST"
        params_form = chosen.params_form(
            request.POST if posted else None, prefix="params"
        )
        submit_form = SubmitForm(
            request.POST if posted else None,
            initial={"seen_target_version": target.version},
        )
        preview = preview_error = None
        if not posted or params_form.is_valid():
            params = params_form.cleaned_data if posted else {}
            if posted or not params_form.fields:
                try:
                    preview = chosen.preview(target, params)
                except ActionNotApplicable as exc:
                    preview_error = str(exc)
        if posted and "_submit" in request.POST and preview and submit_form.is_valid():
            try:
                override = services.override_request_submit(
                    target_kind=chosen_data["target_kind"],
                    target_id=target.pk,
                    action=chosen.name,
                    params=params_form.cleaned_data,
                    reason=submit_form.cleaned_data["reason"],
                    ticket_reference=submit_form.cleaned_data["ticket_reference"],
                    doer=request.user,
                    seen_target_version=submit_form.cleaned_data["seen_target_version"],
                    request=request,
                )
            except InvalidParams as exc:
                submit_form.add_error(None, str(exc))
            except OverrideError as exc:
                submit_form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"Override request {override.pk} submitted; the approvers "
                    "have been notified. It expires at "
                    f"{timezone.localtime(override.expires_at):%Y-%m-%d %H:%M %Z}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._detail_url(override))
        return TemplateResponse(
            request,
            "admin/overrides/overriderequest/submit.html",
            self._context(
                request,
                title=f"Request an override: {chosen.label}",
                chosen=chosen,
                target=target,
                target_kind=chosen_data["target_kind"],
                target_url=_target_admin_url(chosen_data["target_kind"], target.pk),
                params_form=params_form,
                form=submit_form,
                preview=preview,
                preview_error=preview_error,
                earlier=overrides_for_target(chosen_data["target_kind"], target.pk)[
                    :10
                ],
            ),
        )

    # --- everyone: the review page ------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":
            raise PermissionDenied
        override = self._get(request, object_id)
        if not self.has_view_permission(request, override):
            raise PermissionDenied
        services.override_request_viewed(
            override=override, viewer=request.user, request=request
        )
        chosen = ACTIONS.get(override.action)
        user = request.user
        now = timezone.now()
        target = preview = None
        preview_error = ""
        try:
            target = target_get(override.target_kind, override.target_id)
            if override.is_open and chosen:
                preview = chosen.preview(
                    target, override.params, override_id=override.pk
                )
        except ActionNotApplicable as exc:
            preview_error = str(exc)
        moved_on = target is None or target.version != override.target_version
        submitted = override.status == Status.SUBMITTED
        not_doer = user.pk != override.doer_id
        context = self._context(
            request,
            title=f"Override request {override.pk}",
            override=override,
            original=override,
            chosen=chosen,
            target=target,
            target_url=_target_admin_url(override.target_kind, override.target_id),
            preview=preview,
            preview_error=preview_error,
            moved_on=moved_on,
            expired=override.is_expired(now),
            age=now - override.submitted_at,
            trail=audit_trail(override),
            approve_form=ApproveForm(
                initial={
                    "content_hash": override.content_hash,
                    "target_version": override.target_version,
                }
            ),
            close_form=CloseForm(),
            can_approve=submitted
            and not_doer
            and user.has_perm("overrides.approve_overriderequest"),
            can_reject=submitted
            and not_doer
            and user.has_perm("overrides.reject_overriderequest"),
            can_withdraw=submitted
            and not not_doer
            and user.has_perm("overrides.withdraw_overriderequest"),
            can_execute=override.status == Status.APPROVED
            and user.pk == override.approver_id,
            step_up_fresh=step_up_is_fresh(request),
        )
        return TemplateResponse(
            request, "admin/overrides/overriderequest/detail.html", context
        )

    # --- the approver -------------------------------------------------------

    def _post_only(self, request, object_id, permission: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(f"overrides.{permission}"):
            services.override_attempt_refused(
                override_id=self._get(request, object_id).pk,
                actor=request.user,
                step=permission.removesuffix("_overriderequest"),
                error=PermissionDenied(f"lacks overrides.{permission}"),
                request=request,
            )
            raise PermissionDenied
        return None

    def approve_view(self, request, object_id):
        refused = self._post_only(request, object_id, "approve_overriderequest")
        if refused:
            return refused
        override = self._get(request, object_id)
        if not step_up_is_fresh(request):
            return step_up_redirect(request)
        form = ApproveForm(request.POST)
        if not form.is_valid():
            self.message_user(
                request, "Nothing approved: the form was incomplete.", messages.ERROR
            )
            return HttpResponseRedirect(self._detail_url(override))
        try:
            services.override_request_approve(
                override_id=override.pk,
                approver=request.user,
                request=request,
                content_hash=form.cleaned_data["content_hash"],
                target_version=form.cleaned_data["target_version"],
            )
        except OverrideError as exc:
            self.message_user(request, f"Not approved: {exc}", messages.ERROR)
            return HttpResponseRedirect(self._detail_url(override))
        return self._execute(request, override)

    def execute_view(self, request, object_id):
        refused = self._post_only(request, object_id, "approve_overriderequest")
        if refused:
            return refused
        override = self._get(request, object_id)
        if not step_up_is_fresh(request):
            return step_up_redirect(request)
        return self._execute(request, override)

    def _execute(self, request, override):
        try:
            done = services.override_request_execute(
                override_id=override.pk, actor=request.user, request=request
            )
        except OverrideError as exc:
            self.message_user(request, f"Not executed: {exc}", messages.ERROR)
        else:
            result = done.execution_result
            if done.status == Status.EXECUTED and result is not None:
                self.message_user(
                    request,
                    f"Override request {done.pk} approved and executed: "
                    f"{done.target_kind} {done.target_id} is now "
                    f"{result['target_state']}.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    f"Override request {done.pk} approved but execution failed, "
                    f"nothing was written: {done.execution_error}",
                    messages.ERROR,
                )
        return HttpResponseRedirect(self._detail_url(override))

    def reject_view(self, request, object_id):
        return self._close(
            request,
            object_id,
            "reject_overriderequest",
            "rejected",
            services.override_request_reject,
            "approver",
        )

    # --- the doer -----------------------------------------------------------

    def withdraw_view(self, request, object_id):
        return self._close(
            request,
            object_id,
            "withdraw_overriderequest",
            "withdrawn",
            services.override_request_withdraw,
            "doer",
        )

    def _close(self, request, object_id, permission, verb, service, role):
        refused = self._post_only(request, object_id, permission)
        if refused:
            return refused
        override = self._get(request, object_id)
        form = CloseForm(request.POST)
        if not form.is_valid():
            self.message_user(
                request, f"Not {verb}: a reason is required.", messages.ERROR
            )
            return HttpResponseRedirect(self._detail_url(override))
        try:
            service(
                override_id=override.pk,
                reason=form.cleaned_data["reason"],
                request=request,
                **{role: request.user},
            )
        except OverrideError as exc:
            self.message_user(request, f"Not {verb}: {exc}", messages.ERROR)
        else:
            self.message_user(
                request, f"Override request {override.pk} {verb}.", messages.SUCCESS
            )
        return HttpResponseRedirect(self._detail_url(override))

    # --- the weekly count ---------------------------------------------------

    def weekly_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(
            request,
            "admin/overrides/overriderequest/weekly.html",
            self._context(
                request,
                title="Manual interventions per week",
                weeks=overrides_per_week(weeks=12),
            ),
        )
