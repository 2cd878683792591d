"""Incidents: declare, run and review them.

The change page edits only the words (title, summary, impact) and the
commander; everything else is a small form of its own, linked from the
page's tools, each calling one service that writes the timeline: post an
update, change severity, acknowledge the page, order a rollback or kill
switch (fresh second factor), link a record, open the review.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from incidents.admin.common import (
    ADMIN_CSS,
    ReadOnlyInline,
    badge,
    form_page,
    require,
    table,
)
from incidents.models import (
    ActionItem,
    Incident,
    IncidentLink,
    Page,
    Review,
    RollbackAuthority,
    Severity,
    TimelineEntry,
)
from incidents.selectors import link_url
from incidents.services.incidents import (
    IncidentError,
    incident_declare,
    incident_link_add,
    incident_order,
    incident_post,
    incident_set_commander,
    incident_set_severity,
    order_authority,
    review_complete,
    review_open,
)
from incidents.services.paging import page_acknowledge
from security.stepup import step_up_required

User = get_user_model()

_STATUS_COLOURS: dict[str, str] = {
    Incident.Status.INVESTIGATING: "red",
    Incident.Status.IDENTIFIED: "amber",
    Incident.Status.MITIGATED: "blue",
    Incident.Status.RESOLVED: "green",
}
_PAGE_COLOURS: dict[str, str] = {
    Page.Status.ACTIVE: "red",
    Page.Status.ACKNOWLEDGED: "green",
    Page.Status.EXHAUSTED: "red",
    Page.Status.SUPERSEDED: "grey",
    Page.Status.CANCELLED: "grey",
    Page.Status.COMPLETED: "green",
}


def _staff():
    return User.objects.filter(is_staff=True, is_active=True).order_by("username")


class DeclareForm(forms.Form):
    title = forms.CharField(max_length=200)
    severity = forms.ModelChoiceField(Severity.objects.all())
    summary = forms.CharField(widget=forms.Textarea, required=False)
    customer_impact = forms.CharField(widget=forms.Textarea, required=False)
    commander = forms.ModelChoiceField(
        _staff(),
        required=False,
        help_text="Empty: the on-call Incident commander (or you, when nobody "
        "is on call).",
    )


class PostForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (TimelineEntry.Kind.UPDATE, "status update"),
            (TimelineEntry.Kind.ACTION, "action taken"),
            (TimelineEntry.Kind.DECISION, "decision"),
        ]
    )
    text = forms.CharField(widget=forms.Textarea)
    status = forms.ChoiceField(
        choices=[("", "unchanged"), *Incident.Status.choices], required=False
    )


class SeverityForm(forms.Form):
    severity = forms.ModelChoiceField(Severity.objects.all())
    reason = forms.CharField(max_length=500)


class OrderForm(forms.Form):
    order = forms.ChoiceField(choices=RollbackAuthority.Order.choices)
    what = forms.CharField(
        max_length=300,
        help_text="The release to roll back, or the feature flag to switch off.",
    )
    reason = forms.CharField(widget=forms.Textarea)


class LinkForm(forms.Form):
    target_type = forms.CharField(
        label="record type",
        max_length=100,
        help_text="app_label.model: stuck.stuckcase, reconciliation.ticket, "
        "overrides.overriderequest, jobs.jobrun, alerts.alert",
    )
    target_id = forms.CharField(label="id", max_length=64)
    label = forms.CharField(max_length=200, required=False)


class ConfirmForm(forms.Form):
    pass


class TimelineInline(ReadOnlyInline):
    model = TimelineEntry
    fields = ["at", "kind", "actor_name", "text"]
    ordering = ["at", "id"]
    verbose_name_plural = "timeline"


class LinkInline(ReadOnlyInline):
    model = IncidentLink
    fields = ["record", "label", "created_by", "created_at"]

    @admin.display(description="record")
    def record(self, obj):
        url = link_url(obj.target_type, obj.target_id)
        text = f"{obj.target_type} {obj.target_id}"
        return format_html('<a href="{}">{}</a>', url, text) if url else text


def paging_state(incident: Incident) -> tuple[str, str]:
    """The latest page in words, and its colour."""
    page = incident.pages.select_related("acknowledged_by").first()
    if page is None:
        return "not paged", "grey"
    if page.status == Page.Status.ACTIVE:
        text = f"paging: {page.next_index} of {page.total_steps} steps run"
    elif page.status == Page.Status.ACKNOWLEDGED and page.acknowledged_at:
        minutes = int((page.acknowledged_at - page.started_at).total_seconds() // 60)
        who = page.acknowledged_by.get_username() if page.acknowledged_by else "?"
        text = f"acknowledged by {who} after {minutes} min"
    else:
        text = page.status
    return text, _PAGE_COLOURS[page.status]


@admin.register(Incident)
class IncidentAdmin(SimpleHistoryAdmin):
    list_display = [
        "id",
        "title",
        "severity",
        "status_badge",
        "commander",
        "declared_at",
        "paging",
        "next_update",
    ]
    list_filter = ["status", "severity", "source"]
    list_select_related = ["severity", "commander"]
    search_fields = ["title", "summary"]
    fields = [
        "title",
        "summary",
        "customer_impact",
        "commander",
        "severity",
        "status",
        "paging",
        "pages_table",
        "source",
        "source_key",
        "declared_by",
        "declared_at",
        "identified_at",
        "mitigated_at",
        "resolved_at",
        "review_link",
    ]
    readonly_fields = fields[4:]
    inlines = [TimelineInline, LinkInline]
    change_form_template = "admin/incidents/incident/change_form.html"

    class Media:
        css = ADMIN_CSS

    def has_delete_permission(self, request, obj=None):
        return False

    def has_acknowledge_permission(self, request):
        return request.user.has_perm("incidents.acknowledge_page")

    def get_urls(self):
        views = [
            ("post", self.post_view),
            ("severity", self.severity_view),
            ("acknowledge", self.acknowledge_view),
            ("order", self.order_view),
            ("link", self.link_view),
            ("review", self.review_view),
        ]
        return [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(view),
                name=f"incidents_incident_{name}",
            )
            for name, view in views
        ] + super().get_urls()

    # List columns.

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, _STATUS_COLOURS[obj.status])

    @admin.display(description="paging")
    def paging(self, obj):
        return badge(*paging_state(obj))

    @admin.display(description="next update due")
    def next_update(self, obj):
        if not obj.is_open:
            return "-"
        due = obj.last_update_at + timedelta(minutes=obj.severity.update_minutes)
        return badge("overdue", "red") if due <= timezone.now() else due

    @admin.display(description="pages")
    def pages_table(self, obj):
        rows = []
        for page in obj.pages.select_related("severity", "acknowledged_by"):
            url = reverse("admin:incidents_page_change", args=[page.pk])
            rows.append(
                [
                    format_html('<a href="{}">#{}</a>', url, page.pk),
                    page.severity.name,
                    page.status,
                    page.started_at,
                    f"{page.next_index} of {page.total_steps}",
                    page.next_step_at or "-",
                    page.acknowledged_by or "-",
                ]
            )
        return table(
            ["page", "policy", "status", "started", "steps run", "next", "ack by"],
            rows,
        )

    @admin.display(description="post-incident review")
    def review_link(self, obj):
        review = Review.objects.filter(incident=obj).first()
        if review is None:
            return "none yet"
        url = reverse("admin:incidents_review_change", args=[review.pk])
        state = "completed" if review.completed_at else "open"
        return format_html('<a href="{}">{}</a>', url, state)

    # Declaring.

    def add_view(self, request, form_url="", extra_context=None):
        require(self.has_add_permission(request))
        form = DeclareForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            incident = incident_declare(
                title=data["title"],
                severity=data["severity"],
                summary=data["summary"],
                customer_impact=data["customer_impact"],
                commander=data["commander"],
                declared_by=request.user,
            )
            self.message_user(
                request,
                f"Declared incident #{incident.pk} at {incident.severity.name}; "
                "paging follows its escalation policy.",
            )
            return self._back(incident)
        return form_page(
            self,
            request,
            title="Declare an incident",
            form=form,
            submit="Declare",
            intro="Declaring starts paging by the severity's escalation matrix "
            "(docs/incident-playbook.md).",
        )

    def save_model(self, request, obj, form, change):
        commander = obj.commander
        moved = change and "commander" in form.changed_data
        if moved:
            obj.commander_id = form.initial.get("commander")
        super().save_model(request, obj, form, change)
        if moved:
            incident_set_commander(
                incident_id=obj.pk, commander=commander, actor=request.user
            )

    # The incident's own forms.

    def _incident(self, request, object_id) -> Incident:
        incident = self.get_object(request, unquote(object_id))
        if incident is None:
            raise Http404
        return incident

    def _back(self, incident):
        return HttpResponseRedirect(
            reverse("admin:incidents_incident_change", args=[incident.pk])
        )

    def _run(self, request, incident, call, done: str):
        try:
            call()
        except IncidentError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return None
        self.message_user(request, done)
        return self._back(incident)

    def post_view(self, request, object_id):
        incident = self._incident(request, object_id)
        require(self.has_change_permission(request, incident))
        form = PostForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            done = self._run(
                request,
                incident,
                lambda: incident_post(
                    incident_id=incident.pk,
                    kind=data["kind"],
                    text=data["text"],
                    status=data["status"],
                    actor=request.user,
                ),
                "Posted to the timeline.",
            )
            if done:
                return done
        return form_page(
            self,
            request,
            title="Post to the timeline",
            form=form,
            submit="Post",
            obj=incident,
        )

    def severity_view(self, request, object_id):
        incident = self._incident(request, object_id)
        require(self.has_change_permission(request, incident))
        form = SeverityForm(
            request.POST or None, initial={"severity": incident.severity}
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            done = self._run(
                request,
                incident,
                lambda: incident_set_severity(
                    incident_id=incident.pk,
                    severity=data["severity"],
                    reason=data["reason"],
                    actor=request.user,
                ),
                f"Severity is now {data['severity'].name}; escalation re-evaluated.",
            )
            if done:
                return done
        return form_page(
            self,
            request,
            title="Change severity",
            form=form,
            submit="Change severity",
            obj=incident,
            intro="A page still escalating continues under the new severity's "
            "policy from the step it reached; an acknowledged one stays so.",
        )

    def acknowledge_view(self, request, object_id):
        incident = self._incident(request, object_id)
        require(self.has_acknowledge_permission(request))
        form = ConfirmForm(request.POST or None)
        if request.method == "POST":
            pages = incident.pages.filter(
                status__in=[Page.Status.ACTIVE, Page.Status.EXHAUSTED]
            )
            stopped = 0
            for page in pages:
                _, now_stopped = page_acknowledge(
                    page_id=page.pk, user=request.user, via="admin"
                )
                stopped += now_stopped
            if stopped:
                self.message_user(request, "Acknowledged: escalation stopped.")
            else:
                self.message_user(
                    request,
                    "Nothing to acknowledge: no page is escalating.",
                    level=messages.WARNING,
                )
            return self._back(incident)
        return form_page(
            self,
            request,
            title="Acknowledge the page",
            form=form,
            submit="Acknowledge",
            obj=incident,
            intro=f"Paging: {paging_state(incident)[0]}. Acknowledging stops the "
            "escalation in your name.",
        )

    @method_decorator(step_up_required)
    def order_view(self, request, object_id):
        incident = self._incident(request, object_id)
        require(self.has_view_permission(request, incident))
        form = OrderForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            done = self._run(
                request,
                incident,
                lambda: incident_order(
                    incident_id=incident.pk,
                    order=data["order"],
                    what=data["what"],
                    reason=data["reason"],
                    actor=request.user,
                    request=request,
                ),
                "The order is on the timeline and in the audit log.",
            )
            if done:
                return done
        held = [
            f"{label}: {order_authority(user=request.user, incident=incident, order=o)}"
            for o, label in RollbackAuthority.Order.choices
        ]
        return form_page(
            self,
            request,
            title="Order a rollback or kill switch",
            form=form,
            submit="Give the order",
            obj=incident,
            danger=True,
            intro=f"At {incident.severity.name} your authority is "
            f"{'; '.join(held)} (None: refused). The order is recorded with "
            "your name and the role it was given under.",
        )

    def link_view(self, request, object_id):
        incident = self._incident(request, object_id)
        require(self.has_change_permission(request, incident))
        form = LinkForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            done = self._run(
                request,
                incident,
                lambda: incident_link_add(
                    incident_id=incident.pk,
                    target_type=data["target_type"],
                    target_id=data["target_id"],
                    label=data["label"],
                    actor=request.user,
                ),
                "Linked.",
            )
            if done:
                return done
        return form_page(
            self, request, title="Link a record", form=form, submit="Link", obj=incident
        )

    def review_view(self, request, object_id):
        incident = self._incident(request, object_id)
        existing = Review.objects.filter(incident=incident).first()
        if existing is None:
            require(request.user.has_perm("incidents.add_review"))
            form = ConfirmForm(request.POST or None)
            if request.method != "POST":
                return form_page(
                    self,
                    request,
                    title="Open the post-incident review",
                    form=form,
                    submit="Open the review",
                    obj=incident,
                )
            existing = review_open(incident_id=incident.pk, actor=request.user)
        return HttpResponseRedirect(
            reverse("admin:incidents_review_change", args=[existing.pk])
        )


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    fk_name = "review"
    fields = ["title", "owner", "due_on", "status", "note"]
    extra = 0


@admin.register(Review)
class ReviewAdmin(SimpleHistoryAdmin):
    list_display = ["incident", "facilitator", "held_on", "completed_at", "items"]
    list_select_related = ["incident__severity", "facilitator"]
    fields = [
        "incident",
        "summary",
        "root_cause",
        "contributing_factors",
        "went_well",
        "went_badly",
        "facilitator",
        "held_on",
        "completed_at",
    ]
    readonly_fields = ["incident", "completed_at"]
    inlines = [ActionItemInline]
    actions = ["complete"]

    def has_add_permission(self, request):
        # Opened from the incident ("Post-incident review").
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="action items")
    def items(self, obj):
        return obj.action_items.count()

    @admin.action(description="Complete the review", permissions=["change"])
    def complete(self, request, queryset):
        done, refused = 0, []
        for review in queryset:
            try:
                review_complete(review_id=review.pk, actor=request.user)
                done += 1
            except IncidentError as exc:
                refused.append(f"incident {review.incident_id}: {exc}")
        self.message_user(request, f"Completed {done} review(s).")
        if refused:
            self.message_user(
                request, "Not completed: " + "; ".join(refused), level=messages.WARNING
            )


class OverdueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "overdue and open")]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            return queryset.filter(
                status=ActionItem.Status.OPEN, due_on__lt=timezone.localdate()
            )
        return queryset


@admin.register(ActionItem)
class ActionItemAdmin(SimpleHistoryAdmin):
    list_display = ["title", "origin", "owner", "due_on", "status_badge"]
    list_filter = [OverdueFilter, "status", "owner"]
    list_select_related = ["owner", "review__incident", "exercise"]
    search_fields = ["title"]
    fields = ["title", "origin", "owner", "due_on", "status", "note"]
    readonly_fields = ["origin"]

    class Media:
        css = ADMIN_CSS

    def has_add_permission(self, request):
        # Added in the review or the exercise they come from.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="from")
    def origin(self, obj):
        if obj.review_id:
            url = reverse("admin:incidents_review_change", args=[obj.review_id])
            text = f"review of incident #{obj.review.incident_id}"
        else:
            url = reverse("admin:incidents_exercise_change", args=[obj.exercise_id])
            text = f"exercise: {obj.exercise}"
        return format_html('<a href="{}">{}</a>', url, text)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        if obj.status == ActionItem.Status.OPEN and obj.due_on < timezone.localdate():
            return badge("overdue", "red")
        return obj.get_status_display()
