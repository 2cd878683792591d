"""Stuck cases and their rules in the admin.

Cases are read-only here (detection owns them); operators with the
``work_stuckcase`` permission acknowledge, assign and note them from the
case page or the list's actions, which append activity rows through
stuck.services. Rules are edited here, each change with a reason.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from finance.money import format_amount
from security.stepup import step_up_action
from stuck.models import StuckCase, StuckCaseActivity, StuckRule
from stuck.retry import RetryRefused, stuck_case_safe_retry
from stuck.services import stuck_case_acknowledge, stuck_case_assign, stuck_case_note

# Age bands: key, label, lower bound, upper bound. Each key is also the
# badge's colour class in stuck/static/stuck/admin.css.
AGE_BANDS = [
    ("under1h", "under 1 hour", timedelta(0), timedelta(hours=1)),
    ("1to6h", "1 to 6 hours", timedelta(hours=1), timedelta(hours=6)),
    ("6to24h", "6 to 24 hours", timedelta(hours=6), timedelta(days=1)),
    ("1to3d", "1 to 3 days", timedelta(days=1), timedelta(days=3)),
    ("over3d", "over 3 days", timedelta(days=3), None),
]


def _badge(text: str, kind: str):
    # Classes, not style attributes: the admin's Content-Security-Policy
    # (style-src 'self') drops inline styles.
    return format_html('<span class="stuck-badge stuck-{}">{}</span>', kind, text)


def _human(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


class OpenFilter(admin.SimpleListFilter):
    """Open cases unless asked otherwise: closed ones are history."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("closed", "Closed"), ("all", "All")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or "open") == value,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: value}
                ),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(closed_at__isnull=True)
        if value == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


class AgeBandFilter(admin.SimpleListFilter):
    """Time in the stuck state, as of the last detection run (or closing)."""

    title = "age"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [(key, label) for key, label, *_ in AGE_BANDS]

    def queryset(self, request, queryset):
        for key, _, low, high in AGE_BANDS:
            if self.value() == key:
                queryset = queryset.filter(age__gte=low)
                return queryset.filter(age__lt=high) if high else queryset
        return queryset


class AcknowledgedFilter(admin.SimpleListFilter):
    title = "acknowledged"
    parameter_name = "acknowledged"

    def lookups(self, request, model_admin):
        return [("no", "Not yet"), ("yes", "Yes"), ("mine", "Assigned to me")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(acknowledged_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(acknowledged_at__isnull=False)
        if self.value() == "mine":
            return queryset.filter(assignee_id=request.user.pk)
        return queryset


class StuckCaseActivityInline(admin.TabularInline):
    model = StuckCaseActivity
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "kind", "actor", "assignee", "text")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Whoever may see the case sees its activity.
        return request.user.has_perm("stuck.view_stuckcase") or request.user.has_perm(
            "stuck.work_stuckcase"
        )


class StuckCaseWorkForm(forms.ModelForm):
    """The case page's form: nothing of the case itself is editable."""

    acknowledge = forms.BooleanField(required=False)
    assign_to = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True),
        required=False,
        help_text="who follows the case up",
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    class Meta:
        model = StuckCase
        fields: list[str] = []


_ITEM_ADMIN = {
    "deposit": "admin:finance_deposit_change",
    "withdrawal": "admin:finance_withdrawal_change",
    "payout": "admin:finance_payout_change",
    "webhook_delivery": "admin:finance_webhookdelivery_change",
}


@admin.register(StuckCase)
class StuckCaseAdmin(admin.ModelAdmin):
    form = StuckCaseWorkForm
    inlines = [StuckCaseActivityInline]
    list_display = [
        "id",
        "item",
        "state",
        "provider",
        "money",
        "age_badge",
        "sla_badge",
        "rule",
        "status",
        "assignee_name",
        "acknowledged",
        "last_seen_at",
    ]
    list_display_links = ["id"]
    list_filter = [
        OpenFilter,
        "item_kind",
        "rule",
        "provider",
        "sla_breached",
        AgeBandFilter,
        AcknowledgedFilter,
    ]
    list_select_related = ["rule"]

    class Media:
        css = {"all": ["stuck/admin.css"]}

    search_fields = ["=item_id"]
    ordering = ["stuck_since"]
    actions = ["acknowledge_selected", "assign_selected_to_me", "safe_retry_selected"]
    case_fields = (
        "item",
        "state",
        "current_state",
        "rule",
        "provider",
        "money",
        "stuck_since",
        "age_badge",
        "sla_badge",
        "first_seen_at",
        "last_seen_at",
        "opened_at",
        "reopen_count",
        "closed_at",
        "close_reason",
        "assignee_name",
        "acknowledged",
    )
    readonly_fields = case_fields
    fieldsets = [
        (None, {"fields": case_fields}),
        ("Work the case", {"fields": ("acknowledge", "assign_to", "note")}),
    ]

    def get_queryset(self, request):
        activities = StuckCaseActivity.objects.filter(case=OuterRef("pk"))
        latest_assignment = activities.filter(kind="assigned").order_by(
            "-created_at", "-id"
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                # An acknowledgement counts for the case as (re)opened.
                acknowledged_at=Subquery(
                    activities.filter(
                        kind="acknowledged", created_at__gte=OuterRef("opened_at")
                    )
                    .order_by("-created_at")
                    .values("created_at")[:1]
                ),
                assignee_id=Subquery(latest_assignment.values("assignee_id")[:1]),
                assignee_username=Subquery(
                    latest_assignment.values("assignee__username")[:1]
                ),
            )
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("stuck.work_stuckcase")

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self.has_change_permission(
            request, obj
        )

    @admin.display(description="item", ordering="item_id")
    def item(self, case):
        label = f"{case.get_item_kind_display()} {case.item_id}"
        try:
            url = reverse(_ITEM_ADMIN[case.item_kind], args=[case.item_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="amount")
    def money(self, case):
        if case.amount is None:
            return "-"
        return format_amount(case.amount, case.currency)

    @admin.display(description="age", ordering="age")
    def age_badge(self, case):
        age = case.live_age(timezone.now())
        band = next(
            key
            for key, _, low, high in AGE_BANDS
            if age >= low and (high is None or age < high)
        )
        return _badge(_human(age), band)

    @admin.display(description="SLA", ordering="sla_breached")
    def sla_badge(self, case):
        return _badge("SLA breached", "breach") if case.sla_breached else "-"

    @admin.display(description="status", ordering="closed_at")
    def status(self, case):
        if case.closed_at is None:
            return _badge("reopened" if case.reopen_count else "open", "open")
        return format_html("closed: {}", case.close_reason)

    @admin.display(description="assignee")
    def assignee_name(self, case):
        return case.assignee_username or "-"

    @admin.display(description="acknowledged", boolean=True)
    def acknowledged(self, case):
        return case.acknowledged_at is not None

    def save_model(self, request, obj, form, change):
        """Record what the operator did; the case row itself is never saved."""
        data = form.cleaned_data
        done = []
        if data["acknowledge"]:
            stuck_case_acknowledge(case=obj, actor=request.user)
            done.append("acknowledged")
        if data["assign_to"]:
            stuck_case_assign(case=obj, assignee=data["assign_to"], actor=request.user)
            done.append(f"assigned to {data['assign_to']}")
        if data["note"].strip():
            stuck_case_note(case=obj, actor=request.user, text=data["note"])
            done.append("note added")
        self._work_done = done

    def save_related(self, request, form, formsets, change):
        """The activity inline is read-only; nothing related is saved here."""

    def construct_change_message(self, request, form, formsets, add=False):
        return "; ".join(getattr(self, "_work_done", [])) or "nothing done"

    @admin.action(description="Acknowledge selected cases", permissions=["change"])
    def acknowledge_selected(self, request, queryset):
        done = skipped_closed = skipped_seen = 0
        for case in queryset:
            if case.closed_at is not None:
                skipped_closed += 1
            elif case.acknowledged_at is not None:
                skipped_seen += 1
            else:
                stuck_case_acknowledge(case=case, actor=request.user)
                done += 1
        self.message_user(
            request,
            f"Acknowledged {done} case(s); skipped {skipped_seen} already "
            f"acknowledged and {skipped_closed} closed.",
            messages.SUCCESS if done else messages.WARNING,
        )

    @admin.action(description="Assign selected cases to me", permissions=["change"])
    def assign_selected_to_me(self, request, queryset):
        done = skipped = 0
        for case in queryset:
            if case.closed_at is not None or case.assignee_id == request.user.pk:
                skipped += 1
                continue
            stuck_case_assign(case=case, assignee=request.user, actor=request.user)
            done += 1
        self.message_user(
            request,
            f"Assigned {done} case(s) to you; skipped {skipped} closed or "
            f"already yours.",
            messages.SUCCESS if done else messages.WARNING,
        )

    def has_retry_permission(self, request):
        return request.user.has_perm("stuck.retry_stuckcase")

    @admin.action(
        description="Safe retry: resubmit or ask the provider (stuck payouts)",
        permissions=["retry"],
    )
    @step_up_action
    def safe_retry_selected(self, request, queryset):
        """Each case's payout, one provider call at a time, in this request:
        a handful at once, so that the page answers within the provider's
        timeouts."""
        limit = settings.STUCK_SAFE_RETRY_MAX_CASES
        cases = list(queryset.order_by("stuck_since")[: limit + 1])
        if len(cases) > limit:
            self.message_user(
                request,
                f"Select at most {limit} cases for one safe retry; nothing was sent.",
                messages.ERROR,
            )
            return
        for case in cases:
            try:
                outcome = stuck_case_safe_retry(
                    case=case, actor=request.user, request=request
                )
            except RetryRefused as exc:
                self.message_user(
                    request, f"Case {case.pk}: refused: {exc}", messages.WARNING
                )
            else:
                self.message_user(
                    request,
                    f"Case {case.pk}: {outcome.result}",
                    messages.SUCCESS if outcome.moved else messages.INFO,
                )


class StuckRuleForm(forms.ModelForm):
    change_reason = forms.CharField(
        max_length=200, help_text="why this rule is added or changed (kept in history)"
    )

    class Meta:
        model = StuckRule
        fields = [
            "name",
            "item_kind",
            "state",
            "provider",
            "after",
            "unit",
            "is_active",
            "description",
        ]


@admin.register(StuckRule)
class StuckRuleAdmin(SimpleHistoryAdmin):
    form = StuckRuleForm
    list_display = [
        "name",
        "item_kind",
        "state",
        "provider_label",
        "threshold_label",
        "is_active",
        "open_cases",
    ]
    list_filter = ["is_active", "item_kind"]
    search_fields = ["name", "provider"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_case_count=Subquery(
                    StuckCase.objects.filter(
                        rule=OuterRef("pk"), closed_at__isnull=True
                    )
                    .values("rule")
                    .annotate(n=Count("pk"))
                    .values("n")[:1]
                )
            )
        )

    @admin.display(description="provider")
    def provider_label(self, rule):
        return rule.provider or "every provider without its own rule"

    @admin.display(description="stuck after")
    def threshold_label(self, rule):
        return rule.threshold_label

    @admin.display(description="open cases", ordering="open_case_count")
    def open_cases(self, rule):
        count = rule.open_case_count or 0
        url = (
            reverse("admin:stuck_stuckcase_changelist") + f"?rule__id__exact={rule.pk}"
        )
        return format_html('<a href="{}">{}</a>', url, count)

    def save_model(self, request, obj, form, change):
        obj._change_reason = form.cleaned_data["change_reason"]
        super().save_model(request, obj, form, change)
