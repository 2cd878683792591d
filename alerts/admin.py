from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from alerts.models import Alert, Delivery, DeliveryAttempt
from alerts.selectors import undelivered_q
from alerts.services import delivery_resend


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("link", "channel", "action", "status", "attempts", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="delivery")
    def link(self, obj):
        url = reverse("admin:alerts_delivery_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "key",
        "status",
        "severity",
        "summary",
        "muted_reason",
        "triggered_at",
        "trigger_count",
        "resolved_at",
    ]
    list_filter = ["status", "severity", "route", "triggered_at"]
    search_fields = ["key", "summary"]
    readonly_fields = [field.name for field in Alert._meta.fields]
    inlines = [DeliveryInline]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UndeliveredFilter(admin.SimpleListFilter):
    title = "reached someone"
    parameter_name = "undelivered"

    def lookups(self, request, model_admin):
        return [("yes", "undelivered (even the fallback failed)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(undelivered_q())
        return queryset


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "duration_ms", "outcome", "http_status", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "alert",
        "channel",
        "target_display",
        "action",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "fallback",
    ]
    list_filter = [UndeliveredFilter, "status", "channel", "action"]
    list_select_related = ["alert", "fallback"]
    search_fields = ["alert__key", "last_error"]
    readonly_fields = [field.name for field in Delivery._meta.fields]
    inlines = [AttemptInline]
    actions = ["resend"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="target")
    def target_display(self, obj):
        if not obj.target:
            return "(configured default)"
        # A Slack webhook URL is a secret: show where it goes, not the token.
        return obj.target if obj.channel == "email" else obj.target[:12] + "…"

    @admin.action(
        description="Send again (failed deliveries only)", permissions=["change"]
    )
    def resend(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        resent = delivery_resend(delivery_ids=selected)
        skipped = len(selected) - len(resent)
        self.message_user(
            request,
            f"Queued {len(resent)} new deliveries; skipped {skipped} that had "
            "not failed (pending or delivered).",
        )
