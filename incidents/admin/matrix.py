"""Severities with their escalation steps and rollback authority.

Who gets paged and who may order a rollback are privileges: editing them
needs a fresh second factor and leaves an audit entry with the before and
after, besides the history of each row.
"""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from incidents.admin.common import ADMIN_CSS, bullet_list
from incidents.models import EscalationStep, RollbackAuthority, Severity
from incidents.selectors import matrix_findings
from security.audit import audit_record
from security.stepup import StepUpAdminMixin

_BEFORE = "_incidents_matrix_before"


def matrix_snapshot(severity_id) -> dict:
    steps = EscalationStep.objects.filter(severity_id=severity_id).select_related(
        "rotation", "person"
    )
    orders = RollbackAuthority.objects.filter(severity_id=severity_id)
    return {
        "steps": [
            [s.position, s.target_label, s.channels, s.wait_minutes]
            for s in steps.order_by("position", "id")
        ],
        "authority": sorted([a.order, a.role] for a in orders),
    }


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    fields = [
        "position",
        "rotation",
        "person",
        "via_pagerduty",
        "via_slack",
        "via_email",
        "wait_minutes",
    ]
    extra = 0
    ordering = ["position", "id"]


class RollbackAuthorityInline(admin.TabularInline):
    model = RollbackAuthority
    fields = ["order", "role"]
    extra = 0


@admin.register(Severity)
class SeverityAdmin(StepUpAdminMixin, SimpleHistoryAdmin):
    list_display = [
        "name",
        "title",
        "response_minutes",
        "update_minutes",
        "pages_at_night",
        "steps",
        "finding_count",
    ]
    fields = [
        "level",
        "name",
        "title",
        "meaning",
        "examples",
        "response_minutes",
        "update_minutes",
        "who_must_be_told",
        "inform_email",
        "pages_at_night",
        "escalation_repeats",
        "findings",
    ]
    readonly_fields = ["findings"]
    inlines = [EscalationStepInline, RollbackAuthorityInline]

    class Media:
        css = ADMIN_CSS

    def has_delete_permission(self, request, obj=None):
        # Incidents keep their severity; retire a level by editing it.
        return False

    @admin.display(description="steps")
    def steps(self, obj):
        return " → ".join(s.target_label for s in obj.escalation_steps.all()) or "-"

    @admin.display(description="findings now")
    def finding_count(self, obj):
        return len(matrix_findings(obj))

    @admin.display(description="what would fail right now")
    def findings(self, obj):
        if obj.pk is None:
            return "-"
        return bullet_list(matrix_findings(obj), "incidents-findings")

    def save_model(self, request, obj, form, change):
        setattr(request, _BEFORE, matrix_snapshot(obj.pk) if change else None)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        before = getattr(request, _BEFORE, None)
        after = matrix_snapshot(form.instance.pk)
        if before != after:
            audit_record(
                actor=request.user,
                action="incident.matrix_changed",
                target=form.instance,
                before=before,
                after=after,
                request=request,
            )
