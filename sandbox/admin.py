"""Read-only views of what the sandbox provider holds, for the demo."""

from django.contrib import admin

from opsadmin.admin import ReadOnlyAdmin
from sandbox.models import (
    SandboxDeposit,
    SandboxIdempotencyKey,
    SandboxPayout,
    SandboxPlan,
    SandboxSettlementLine,
    SandboxWebhook,
    SandboxWebhookAttempt,
)


@admin.register(SandboxPayout)
class SandboxPayoutAdmin(ReadOnlyAdmin):
    list_display = [
        "provider_reference",
        "reference",
        "amount",
        "currency",
        "status",
        "behaviour",
        "created_at",
        "settled_at",
    ]
    list_filter = ["status", "behaviour", "currency"]
    search_fields = ["=provider_reference", "=reference"]


@admin.register(SandboxDeposit)
class SandboxDepositAdmin(ReadOnlyAdmin):
    list_display = [
        "provider_reference",
        "reference",
        "amount",
        "currency",
        "status",
        "behaviour",
        "created_at",
        "settled_at",
    ]
    list_filter = ["status", "behaviour", "currency"]
    search_fields = ["=provider_reference", "=reference"]


@admin.register(SandboxIdempotencyKey)
class SandboxIdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ["key", "state", "status_code", "created_at", "finished_at"]
    list_filter = ["state"]
    search_fields = ["=key"]


@admin.register(SandboxPlan)
class SandboxPlanAdmin(ReadOnlyAdmin):
    list_display = ["reference", "behaviour", "created_at"]


@admin.register(SandboxSettlementLine)
class SandboxSettlementLineAdmin(ReadOnlyAdmin):
    list_display = [
        "settled_at",
        "provider_reference",
        "type",
        "amount",
        "currency",
        "status",
        "omitted",
        "note",
    ]
    list_filter = ["type", "omitted", "currency"]
    search_fields = ["=provider_reference"]
    date_hierarchy = "settled_at"


class AttemptInline(admin.TabularInline):
    model = SandboxWebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "status_code", "error", "duration_ms"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SandboxWebhook)
class SandboxWebhookAdmin(ReadOnlyAdmin):
    list_display = [
        "event_id",
        "type",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "type"]
    search_fields = ["=event_id"]
    inlines = [AttemptInline]
