"""The waiver register and the secrets' records in the admin.

The register's list shows, at a glance, how many waivers are open and of
which risk, and each waiver's risk and days to its deadline in colour.
Every add and change needs a fresh second factor and a reason, and goes
through waivers.services (audited, with history); approving, rejecting and
closing are actions that ask for the second factor again when it is older
than a few minutes. Nothing is deleted, and history is read-only here:
reverting an old version would skip both the services and the second
factor.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from opsadmin.admin import ReadOnlyAdmin
from security.stepup import StepUpAdminMixin, step_up_action
from waivers.inventory import inventory
from waivers.models import (
    OPEN_STATUSES,
    Reminder,
    SecretObservation,
    SecretRotation,
    Waiver,
)
from waivers.selectors import register_summary, secret_states
from waivers.services import register as services


def _secret_choices():
    return [("", "(not a secret)")] + [
        (spec.name, f"{spec.name}: {spec.title}") for spec in inventory()
    ]


class WaiverForm(forms.ModelForm):
    secret = forms.ChoiceField(choices=_secret_choices, required=False)
    change_reason = forms.CharField(
        max_length=500,
        label="Reason",
        help_text="Why this is recorded or changed: ticket, decision, reference.",
    )

    class Meta:
        model = Waiver
        fields = [
            "reference",
            "item",
            "secret",
            "risk",
            "owner",
            "deadline",
            "justification",
            "compensating_control",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "reference" in self.fields:
            self.fields["reference"].required = False
            self.fields["reference"].help_text = "Left empty: the next W-number."
        self.fields["item"].required = False
        self.fields["item"].help_text = "Left empty for a secret: its name."

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if not cleaned.get("item") and not cleaned.get("secret"):
            self.add_error("item", "Name the gap, or choose the secret.")
        return cleaned


class DecisionForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


class DeadlineFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "deadline_state"

    def lookups(self, request, model_admin):
        return [
            ("past", "past (open)"),
            ("soon", "due soon (open)"),
            ("later", "later (open)"),
        ]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        soon = today + timedelta(days=_lead_days())
        open_waivers = queryset.filter(status__in=OPEN_STATUSES)
        if self.value() == "past":
            return open_waivers.filter(deadline__lt=today)
        if self.value() == "soon":
            return open_waivers.filter(deadline__gte=today, deadline__lte=soon)
        if self.value() == "later":
            return open_waivers.filter(deadline__gt=soon)
        return queryset


class KindFilter(admin.SimpleListFilter):
    title = "item"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("secret", "a secret"), ("other", "another gap")]

    def queryset(self, request, queryset):
        if self.value() == "secret":
            return queryset.exclude(secret="")
        if self.value() == "other":
            return queryset.filter(secret="")
        return queryset


def _lead_days() -> int:
    return max(settings.WAIVER_REMINDER_DAYS, default=14)


@admin.register(Waiver)
class WaiverAdmin(StepUpAdminMixin, SimpleHistoryAdmin):
    form = WaiverForm
    list_display = (
        "reference",
        "item",
        "risk_badge",
        "owner",
        "status_badge",
        "deadline",
        "days_left",
        "approved_by",
    )
    list_display_links = ("reference", "item")
    list_filter = ("status", "risk", DeadlineFilter, KindFilter, "owner")
    search_fields = ("reference", "item", "secret", "owner__username", "justification")
    list_select_related = ("owner", "approved_by")
    readonly_fields = (
        "status",
        "approved_by",
        "approved_at",
        "ended_by",
        "ended_at",
        "created_at",
        "updated_at",
    )
    actions = ["approve", "reject", "close"]
    change_list_template = "admin/waivers/waiver/change_list.html"

    class Media:
        css = {"all": ["waivers/register.css"]}

    def get_fields(self, request, obj=None):
        fields = list(WaiverForm.Meta.fields)
        if self.has_change_permission(request, obj):
            fields.append("change_reason")
        if obj is not None:
            fields += self.readonly_fields
        return fields

    def get_readonly_fields(self, request, obj=None):
        # The ID is what the team's register matches on: set once.
        if obj is not None:
            return ("reference", *self.readonly_fields)
        return ()

    def has_change_permission(self, request, obj=None):
        # Ended waivers are the record of what was accepted: read-only.
        if obj is not None and not obj.is_open:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_permission(self, request):
        return request.user.has_perm("waivers.approve_waiver")

    def has_close_permission(self, request):
        return request.user.has_perm("waivers.close_waiver")

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return super().history_form_view(request, object_id, version_id, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "summary": register_summary()}
        return super().changelist_view(request, extra_context)

    # --- at a glance -------------------------------------------------------

    @admin.display(description="risk", ordering="risk")
    def risk_badge(self, waiver):
        return format_html(
            '<span class="waiver-badge waiver-risk-{}">{}</span>',
            waiver.risk,
            waiver.risk,
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, waiver):
        return format_html(
            '<span class="waiver-status-{}">{}</span>',
            waiver.status,
            waiver.get_status_display(),
        )

    @admin.display(description="days to deadline", ordering="deadline")
    def days_left(self, waiver):
        if not waiver.is_open:
            return "-"
        days = waiver.days_to_deadline(timezone.localdate())
        if days < 0:
            tone, text = "past", f"{-days} days late"
        elif days <= _lead_days():
            tone, text = "soon", f"{days} days"
        else:
            tone, text = "later", f"{days} days"
        return format_html('<span class="waiver-days-{}">{}</span>', tone, text)

    # --- writes ------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        reason = data["change_reason"]
        if change:
            result = services.waiver_update(
                waiver_id=obj.pk,
                actor=request.user,
                changes={
                    name: data[name]
                    for name in form.changed_data
                    if name in services.MATERIAL_FIELDS
                },
                request=request,
                reason=reason,
            )
            if result.approval_withdrawn:
                self.message_user(
                    request,
                    f"{obj.reference} changed after its approval: it awaits "
                    "approval again.",
                    level=messages.WARNING,
                )
        else:
            waiver = services.waiver_create(
                actor=request.user,
                reference=data.get("reference") or "",
                item=data["item"],
                secret=data["secret"],
                risk=data["risk"],
                owner=data["owner"],
                deadline=data["deadline"],
                justification=data["justification"],
                compensating_control=data["compensating_control"],
                request=request,
                reason=reason,
            )
            obj.pk = waiver.pk
        obj.refresh_from_db()

    def _decide(self, request, queryset, *, verb, service, needs_reason):
        """Ask for a reason where one is needed, then apply ``service`` to each."""
        form = DecisionForm(request.POST if "reason" in request.POST else None)
        if needs_reason and not form.is_valid():
            return TemplateResponse(
                request,
                "admin/waivers/waiver/decision.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"{verb.capitalize()} waivers",
                    "opts": self.opts,
                    "verb": verb,
                    "action": request.POST.get("action"),
                    "waivers": queryset,
                    "form": form,
                    "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                },
            )
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        done, skipped = [], []
        for waiver in queryset:
            try:
                service(
                    waiver_id=waiver.pk,
                    actor=request.user,
                    request=request,
                    reason=reason,
                )
            except services.WaiverError as exc:
                skipped.append(f"{waiver.reference} ({exc})")
            else:
                done.append(waiver.reference)
        if done:
            self.message_user(request, f"{verb.capitalize()}d: {', '.join(done)}.")
        if skipped:
            self.message_user(
                request, f"Skipped: {'; '.join(skipped)}", level=messages.WARNING
            )
        return None

    @admin.action(description="Approve selected waivers", permissions=["approve"])
    @step_up_action
    def approve(self, request, queryset):
        return self._decide(
            request,
            queryset,
            verb="approve",
            service=services.waiver_approve,
            needs_reason=False,
        )

    @admin.action(description="Reject selected waivers", permissions=["approve"])
    @step_up_action
    def reject(self, request, queryset):
        return self._decide(
            request,
            queryset,
            verb="reject",
            service=services.waiver_reject,
            needs_reason=True,
        )

    @admin.action(description="Close selected waivers", permissions=["close"])
    @step_up_action
    def close(self, request, queryset):
        return self._decide(
            request,
            queryset,
            verb="close",
            service=services.waiver_close,
            needs_reason=True,
        )


@admin.register(SecretObservation)
class SecretObservationAdmin(ReadOnlyAdmin):
    """The inventory's secrets: status, age, rotation date, waiver; never a value.

    The list is the inventory itself (secret_states), so a secret not yet
    observed shows too; one observation opens as a read-only record.
    """

    fields = (
        "name",
        "status",
        "value_since",
        "value_since_known",
        "key_source",
        "first_observed_at",
        "last_observed_at",
    )

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        now = timezone.now()
        lead = timedelta(days=_lead_days())
        rows = []
        for state in secret_states(now=now):
            due = state.rotation_due
            rows.append(
                {
                    "state": state,
                    "tone": "past"
                    if state.overdue
                    else "soon"
                    if due and due - now <= lead
                    else "later",
                }
            )
        return TemplateResponse(
            request,
            "admin/waivers/secrets.html",
            {
                **self.admin_site.each_context(request),
                "title": "Secrets",
                "opts": self.opts,
                "rows": rows,
                **(extra_context or {}),
            },
        )


@admin.register(SecretRotation)
class SecretRotationAdmin(ReadOnlyAdmin):
    list_display = ("name", "detected_at", "source")
    list_filter = ("source", "name")
    # Fingerprints stay off the page: they identify a value, which is enough
    # to tell two deployments apart and nothing an operator needs.
    fields = ("name", "detected_at", "source")
    date_hierarchy = "detected_at"


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    list_display = ("subject", "kind", "due_on", "sent_at", "escalated", "resolved_at")
    list_filter = ("kind", "escalated")
    search_fields = ("subject",)
    fields = (*list_display, "recipients")
