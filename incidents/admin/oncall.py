"""Rotations, overrides of a shift, and how to reach each person."""

from django import forms
from django.contrib import admin
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from incidents.admin.common import ADMIN_CSS, badge, bullet_list, table
from incidents.models import OnCallProfile, Rotation, RotationMember, RotationOverride
from incidents.selectors import (
    CHANNEL_NAMES,
    contact_findings,
    contact_reach,
    oncall_resolve,
    rotation_findings,
    shifts_upcoming,
)

_WHEN = "%a %d %b %H:%M %Z"


class RotationMemberInline(admin.TabularInline):
    model = RotationMember
    fields = ["position", "user"]
    extra = 0
    ordering = ["position", "id"]


@admin.register(Rotation)
class RotationAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "role",
        "on_call_now",
        "until",
        "handoff",
        "finding_count",
    ]
    fields = [
        "name",
        "description",
        "role",
        "time_zone",
        "handoff_weekday",
        "handoff_time",
        "shift_days",
        "starts_on",
        "now_and_next",
        "findings",
    ]
    readonly_fields = ["now_and_next", "findings"]
    inlines = [RotationMemberInline]

    class Media:
        css = ADMIN_CSS

    @admin.display(description="on call now")
    def on_call_now(self, obj):
        shift = oncall_resolve(obj)
        if shift.user is None:
            return badge("nobody", "red")
        name = shift.user.get_username()
        return f"{name} (override)" if shift.override else name

    @admin.display(description="until")
    def until(self, obj):
        shift = oncall_resolve(obj)
        if shift.ends_at is None:
            return "-"
        return f"{shift.ends_at.astimezone(obj.zone):{_WHEN}}"

    @admin.display(description="handoff")
    def handoff(self, obj):
        return (
            f"{obj.get_handoff_weekday_display()} {obj.handoff_time:%H:%M} "
            f"{obj.time_zone}, every {obj.shift_days} day(s)"
        )

    @admin.display(description="findings")
    def finding_count(self, obj):
        count = len(rotation_findings(obj))
        return badge(str(count), "red") if count else "0"

    @admin.display(description="shifts (in the rotation's time zone)")
    def now_and_next(self, obj):
        if obj.pk is None:
            return "-"
        rows = []
        for shift in shifts_upcoming(obj, start=timezone.now(), count=6):
            if shift.starts_at is None or shift.ends_at is None:
                continue  # before the rotation's first shift
            rows.append(
                [
                    shift.user.get_username() if shift.user else "nobody",
                    f"{shift.starts_at.astimezone(obj.zone):{_WHEN}}",
                    f"{shift.ends_at.astimezone(obj.zone):{_WHEN}}",
                ]
            )
        return table(["who", "from", "until"], rows)

    @admin.display(description="findings")
    def findings(self, obj):
        if obj.pk is None:
            return "-"
        return bullet_list(rotation_findings(obj), "incidents-findings")


@admin.register(RotationOverride)
class RotationOverrideAdmin(SimpleHistoryAdmin):
    list_display = ["rotation", "user", "starts_at", "ends_at", "reason", "created_by"]
    list_filter = ["rotation"]
    list_select_related = ["rotation", "user", "created_by"]
    fields = ["rotation", "user", "starts_at", "ends_at", "reason"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class SecretField(forms.CharField):
    """Shown empty once saved; left empty it keeps the saved value."""

    widget = forms.PasswordInput(render_value=False)


class OnCallProfileForm(forms.ModelForm):
    _SECRETS = ("pagerduty_routing_key", "slack_webhook_url")
    _CLEAR = "none"

    pagerduty_routing_key = SecretField(
        required=False,
        max_length=64,
        help_text="The integration key of this person's PagerDuty service. "
        "Leave empty to keep the saved one; type none to remove it.",
    )
    slack_webhook_url = SecretField(
        required=False,
        max_length=500,
        help_text="A webhook posting to this person. Leave empty to keep the "
        "saved one; type none to remove it.",
    )

    class Meta:
        model = OnCallProfile
        fields = [
            "user",
            "pagerduty_routing_key",
            "slack_webhook_url",
            "slack_handle",
            "email",
            "phone",
        ]

    def clean_slack_webhook_url(self):
        value = self.cleaned_data["slack_webhook_url"].strip()
        if value and value != self._CLEAR:
            forms.URLField().clean(value)
        return value

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        for name in self._SECRETS:
            value = (cleaned.get(name) or "").strip()
            if value == self._CLEAR:
                cleaned[name] = ""
            elif not value:
                cleaned[name] = getattr(self.instance, name, "")
        return cleaned


@admin.register(OnCallProfile)
class OnCallProfileAdmin(SimpleHistoryAdmin):
    form = OnCallProfileForm
    list_display = ["user", "channels", "phone", "finding"]
    list_select_related = ["user"]
    search_fields = ["user__username", "email"]

    class Media:
        css = ADMIN_CSS

    @admin.display(description="reachable on")
    def channels(self, obj):
        reachable = [
            name
            for channel, name in CHANNEL_NAMES.items()
            if contact_reach(obj.user, channel)
        ]
        return ", ".join(reachable) or badge("nothing", "red")

    @admin.display(description="finding")
    def finding(self, obj):
        return "; ".join(contact_findings(obj.user)) or "-"
