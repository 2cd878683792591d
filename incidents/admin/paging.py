"""Escalations under way or done, and escalation tests with their report."""

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from incidents.admin.common import (
    ADMIN_CSS,
    ReadOnlyInline,
    bullet_list,
    form_page,
    require,
    table,
)
from incidents.models import EscalationTest, Page, PageNotification, Severity
from incidents.selectors import CHANNEL_NAMES, escalation_test_findings
from incidents.services.paging import escalation_test_start
from opsadmin.admin import ReadOnlyAdmin


class NotificationInline(ReadOnlyInline):
    model = PageNotification
    fields = [
        "step_position",
        "round",
        "rotation_name",
        "person_name",
        "channel_name",
        "outcome",
        "delivered",
        "notified_at",
        "acknowledged_at",
        "seconds_to_acknowledge",
    ]
    ordering = ["index", "id"]

    @admin.display(description="channel")
    def channel_name(self, obj):
        return CHANNEL_NAMES.get(obj.channel, "-")

    @admin.display(description="delivery")
    def delivered(self, obj):
        if obj.delivery_id is None:
            return "-"
        url = reverse("admin:alerts_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">{}</a>', url, obj.delivery.status)

    @admin.display(description="seconds to acknowledge")
    def seconds_to_acknowledge(self, obj):
        return obj.seconds_to_acknowledge if obj.acknowledged_at else "-"


PAGE_FIELDS = [
    "owner",
    "severity",
    "status",
    "steps_run",
    "next_step_at",
    "started_at",
    "ended_at",
    "acknowledged_by",
    "acknowledged_at",
    "acknowledged_via",
    "frozen_policy",
]


@admin.register(Page)
class PageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "owner",
        "severity",
        "status",
        "steps_run",
        "next_step_at",
        "started_at",
        "acknowledged_by",
        "acknowledged_at",
    ]
    list_filter = ["status", "severity"]
    list_select_related = ["severity", "incident", "escalation_test", "acknowledged_by"]
    fields = tuple(PAGE_FIELDS)
    readonly_fields = PAGE_FIELDS
    inlines = [NotificationInline]

    @admin.display(description="for")
    def owner(self, obj):
        if obj.incident_id:
            url = reverse("admin:incidents_incident_change", args=[obj.incident_id])
            return format_html('<a href="{}">incident #{}</a>', url, obj.incident_id)
        url = reverse(
            "admin:incidents_escalationtest_change", args=[obj.escalation_test_id]
        )
        return format_html('<a href="{}">test {}</a>', url, obj.escalation_test_id)

    @admin.display(description="steps run")
    def steps_run(self, obj):
        return f"{obj.next_index} of {obj.total_steps}"

    @admin.display(description="policy as frozen when paging started")
    def frozen_policy(self, obj):
        return bullet_list(
            [
                f"step {step['position']}: "
                f"{step['rotation'] or step['person']} via "
                f"{', '.join(CHANNEL_NAMES[c] for c in step['channels'])}, "
                f"then wait {step['wait_minutes']} min"
                for step in obj.policy
            ]
            + [f"repeated {obj.repeats} time(s) without acknowledgement"]
        )


class RunTestForm(forms.Form):
    severity = forms.ModelChoiceField(Severity.objects.all())
    note = forms.CharField(max_length=500, required=False)


TEST_FIELDS = [
    "severity",
    "note",
    "started_by",
    "started_at",
    "finished_at",
    "findings",
    "report",
    "page_link",
]


@admin.register(EscalationTest)
class EscalationTestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "severity",
        "started_by",
        "started_at",
        "finished_at",
        "flags",
    ]
    list_select_related = ["severity", "started_by"]
    fields = tuple(TEST_FIELDS)
    readonly_fields = TEST_FIELDS

    class Media:
        css = ADMIN_CSS

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("incidents.add_escalationtest")

    @admin.display(description="findings")
    def flags(self, obj):
        return len(escalation_test_findings(obj))

    @admin.display(description="what would fail in a real page")
    def findings(self, obj):
        return bullet_list(escalation_test_findings(obj), "incidents-findings")

    @admin.display(description="who was reached, on which channel, how fast")
    def report(self, obj):
        notes = PageNotification.objects.filter(page__escalation_test=obj)
        rows = [
            [
                note.step_position,
                note.person_name or note.rotation_name,
                CHANNEL_NAMES.get(note.channel, "-"),
                note.outcome,
                note.delivery.status if note.delivery else "-",
                note.notified_at,
                note.acknowledged_at or "-",
                note.seconds_to_acknowledge if note.acknowledged_at else "-",
            ]
            for note in notes.select_related("delivery").order_by("index", "id")
        ]
        return table(
            [
                "step",
                "who",
                "channel",
                "outcome",
                "delivery",
                "notified",
                "acknowledged",
                "seconds",
            ],
            rows,
        )

    @admin.display(description="escalation")
    def page_link(self, obj):
        page = Page.objects.filter(escalation_test=obj).first()
        if page is None:
            return "-"
        url = reverse("admin:incidents_page_change", args=[page.pk])
        return format_html('<a href="{}">page {} ({})</a>', url, page.pk, page.status)

    def add_view(self, request, form_url="", extra_context=None):
        require(self.has_add_permission(request))
        form = RunTestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            test = escalation_test_start(
                severity=form.cleaned_data["severity"],
                note=form.cleaned_data["note"],
                actor=request.user,
            )
            self.message_user(
                request,
                f"Escalation test {test.pk} started: every step of "
                f"{test.severity.name} is paged for real, marked TEST.",
            )
            return HttpResponseRedirect(
                reverse("admin:incidents_escalationtest_change", args=[test.pk])
            )
        return form_page(
            self,
            request,
            title="Run an escalation test",
            form=form,
            submit="Start the test",
            intro="Real notifications, marked TEST, go to whoever each step "
            "reaches, one step after another. Ask people to press the link in "
            "the message: the report records who was reached on which "
            "channel, how long they took, and every step that would fail.",
        )
